"""Every hosted page, rendered as a route would, is accessible and script-free HTML: a
language, one heading, a label for every field, text on every button and link, no scripts and
no inline style (the page policy would block them anyway), and a CSRF token in every form."""

from __future__ import annotations

import httpx
import pytest

from tests.pages.conftest import page_url
from tests.pages.outline import PageOutline
from tests.pages.samples import TEMPLATES, VARIANTS

NOT_LABELLED = {"hidden", "submit", "button"}
CASES = [(template, variant) for template in TEMPLATES for variant in VARIANTS]


@pytest.fixture(params=CASES, ids=[f"{template}-{variant}" for template, variant in CASES])
async def outline(request: pytest.FixtureRequest, browser: httpx.AsyncClient) -> PageOutline:
    template, variant = request.param
    page = await browser.get(page_url(template, variant))
    assert page.status_code == 200
    return PageOutline.of(page.text)


def test_the_page_has_a_language_a_title_and_a_viewport(outline: PageOutline) -> None:
    assert outline.all("html")[0].attributes.get("lang") == "en"
    assert outline.all("title")[0].text.strip()
    assert any(meta.attributes.get("name") == "viewport" for meta in outline.all("meta"))
    assert len(outline.all("main")) == 1


def test_the_page_has_one_heading_of_the_first_level(outline: PageOutline) -> None:
    headings = outline.all("h1")
    assert len(headings) == 1
    assert headings[0].text.strip()


def test_every_field_has_a_label(outline: PageOutline) -> None:
    labelled = {label.attributes.get("for") for label in outline.all("label") if label.text.strip()}
    fields = [
        element
        for element in outline.all("input") + outline.all("select") + outline.all("textarea")
        if element.attributes.get("type") not in NOT_LABELLED
    ]
    ids = [
        element.attributes.get("id") for element in outline.elements if "id" in element.attributes
    ]

    for element in fields:
        assert element.attributes.get("id") in labelled, element.attributes
    assert len(ids) == len(set(ids))


def test_descriptions_point_at_elements_of_the_page(outline: PageOutline) -> None:
    ids = {element.attributes["id"] for element in outline.elements if "id" in element.attributes}
    for element in outline.elements:
        described_by = element.attributes.get("aria-describedby")
        if described_by:
            assert set(described_by.split()) <= ids


def test_no_scripts_and_no_inline_style(outline: PageOutline) -> None:
    assert not outline.all("script")
    assert not outline.all("style")
    for element in outline.elements:
        assert "style" not in element.attributes, element.tag
        assert not any(name.startswith("on") for name in element.attributes), element.tag
        for name in ("href", "src", "action"):
            assert not element.attributes.get(name, "").lower().startswith("javascript:")


def test_buttons_links_and_images_say_what_they_are(outline: PageOutline) -> None:
    for element in outline.all("button") + outline.all("a") + outline.all("summary"):
        assert element.text.strip(), element.attributes
    for button in outline.all("button"):
        assert button.attributes.get("type") == "submit"
    for image in outline.all("img"):
        assert image.attributes.get("alt", "").strip()


def test_every_form_posts_with_the_csrf_token(outline: PageOutline) -> None:
    for form in outline.all("form"):
        assert form.attributes.get("method") == "post"
        assert form.attributes.get("action")
    for hidden_fields in outline.form_fields:
        assert "csrf_token" in hidden_fields
