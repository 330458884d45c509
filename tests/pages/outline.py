"""An outline of an HTML page, from the standard library's parser: the elements, their
attributes and text, and the hidden fields of each form."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

VOID_ELEMENTS = frozenset({"input", "img", "meta", "link", "br"})


@dataclass
class Element:
    tag: str
    attributes: dict[str, str]
    text: str = ""


class PageOutline(HTMLParser):
    """The elements of a page in document order, each with the text inside it."""

    @classmethod
    def of(cls, html: str) -> PageOutline:
        outline = cls()
        outline.feed(html)
        outline.close()
        return outline

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.open_elements: list[Element] = []
        # The hidden fields of each form, in order.
        self.form_fields: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag == "form":
            self.form_fields.append([])
        if tag == "input" and element.attributes.get("type") == "hidden" and self.form_fields:
            self.form_fields[-1].append(element.attributes["name"])
        if tag not in VOID_ELEMENTS:
            self.open_elements.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self.open_elements and self.open_elements[-1].tag == tag:
            self.open_elements.pop()

    def handle_data(self, data: str) -> None:
        for element in self.open_elements:
            element.text += data

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]
