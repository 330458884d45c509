"""The hosted pages' two stylesheets: the static look (`authsvc.css`) and the theme, CSS custom
properties generated from the branding. Colours reach the pages only this way: the pages'
policy allows no inline style.

Pages link both with a fingerprint of their content (`?v=...`), so browsers may cache them for
long and still pick up a new look or colours as soon as they change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files

from app.api.pages.branding import CARD_COLOR, Branding

THEME_PATH = "/pages/theme.css"
STYLESHEET_PATH = "/pages/assets/authsvc.css"
# Both are named by a fingerprint of their content, so a year is safe.
CACHE_CONTROL = "public, max-age=31536000, immutable"
CSS_MEDIA_TYPE = "text/css"


@dataclass(frozen=True, slots=True)
class StylesheetLinks:
    """The `href`s a page links its stylesheets with."""

    stylesheet: str
    theme: str


@cache
def stylesheet() -> str:
    """The static stylesheet, read from the package once."""
    return (files("app.api.pages") / "static" / "authsvc.css").read_text(encoding="utf-8")


@lru_cache(maxsize=8)
def theme_css(branding: Branding) -> str:
    """The theme stylesheet: the brand's colours and the text colours readable on them."""
    properties = {
        "--brand-primary": branding.primary_color,
        "--brand-on-primary": branding.text_on_primary,
        "--brand-background": branding.background_color,
        "--brand-on-background": branding.text_on_background,
        "--brand-accent-text": branding.accent_text,
        "--brand-focus": branding.focus_ring,
        "--card-background": CARD_COLOR,
    }
    lines = "".join(f"  {name}: {value};\n" for name, value in properties.items())
    return f":root {{\n{lines}}}\n"


def stylesheet_links(branding: Branding, root_path: str = "") -> StylesheetLinks:
    """Where a page served under `root_path` (the ASGI root path) finds its stylesheets."""
    return StylesheetLinks(
        stylesheet=f"{root_path}{STYLESHEET_PATH}?v={_fingerprint(stylesheet())}",
        theme=f"{root_path}{THEME_PATH}?v={_fingerprint(theme_css(branding))}",
    )


@lru_cache(maxsize=16)
def _fingerprint(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:16]
