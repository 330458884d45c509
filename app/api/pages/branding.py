"""The operator's branding of the hosted pages (AUTH_BRAND_*), and the colours derived from it
so that text on the brand's colours stays readable whatever the operator picked."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings

# The pages' own colours (app/api/pages/static/authsvc.css): the card is white, its text dark.
CARD_COLOR = "#ffffff"
DARK_TEXT = "#111827"
# Text on a brand colour: one of the two always contrasts at least 4.58:1 with any colour.
WHITE = "#ffffff"
BLACK = "#000000"

# WCAG 2.x: 4.5:1 for text, 3:1 for large text and the parts of controls (focus rings).
TEXT_CONTRAST = 4.5
NON_TEXT_CONTRAST = 3.0


@dataclass(frozen=True, slots=True)
class Branding:
    """What the pages show of the operator: name, logo, colours (validated `#rrggbb`)."""

    name: str
    logo_url: str | None
    primary_color: str
    background_color: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Branding:
        return cls(
            name=settings.brand_name,
            logo_url=settings.brand_logo_url,
            primary_color=settings.brand_primary_color,
            background_color=settings.brand_background_color,
        )

    @property
    def text_on_primary(self) -> str:
        """Text colour on buttons filled with the primary colour."""
        return readable_text_on(self.primary_color)

    @property
    def text_on_background(self) -> str:
        """Text colour directly on the page background (the header's brand name)."""
        return readable_text_on(self.background_color)

    @property
    def accent_text(self) -> str:
        """Links on the card: the primary colour when it is readable there, else dark text."""
        if contrast_ratio(self.primary_color, CARD_COLOR) >= TEXT_CONTRAST:
            return self.primary_color
        return DARK_TEXT

    @property
    def focus_ring(self) -> str:
        """Focus rings on the card: the primary colour when it stands out there, else dark."""
        if contrast_ratio(self.primary_color, CARD_COLOR) >= NON_TEXT_CONTRAST:
            return self.primary_color
        return DARK_TEXT


def readable_text_on(color: str) -> str:
    """White or black, whichever contrasts more with `color` (at least 4.58:1)."""
    if contrast_ratio(WHITE, color) >= contrast_ratio(BLACK, color):
        return WHITE
    return BLACK


def contrast_ratio(first: str, second: str) -> float:
    """The WCAG contrast ratio (1 to 21) of two `#rrggbb` colours."""
    lighter, darker = sorted((_relative_luminance(first), _relative_luminance(second)))[::-1]
    return (lighter + 0.05) / (darker + 0.05)


def _relative_luminance(color: str) -> float:
    red, green, blue = (_linear(int(color[index : index + 2], 16) / 255) for index in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4
