"""Branding settings are validated where they are read, and the theme keeps text readable on
whatever colours an operator picks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.api.pages.branding import (
    CARD_COLOR,
    NON_TEXT_CONTRAST,
    TEXT_CONTRAST,
    Branding,
    contrast_ratio,
)
from app.api.pages.stylesheets import theme_css
from app.config import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_the_defaults_are_readable() -> None:
    branding = Branding.from_settings(settings())

    assert branding.name == "authsvc"
    assert branding.logo_url is None
    assert contrast_ratio(branding.primary_color, branding.text_on_primary) >= TEXT_CONTRAST
    assert contrast_ratio(branding.accent_text, CARD_COLOR) >= TEXT_CONTRAST
    assert contrast_ratio(branding.background_color, branding.text_on_background) >= TEXT_CONTRAST


@pytest.mark.parametrize("color", ["#000000", "#ffffff", "#ffcc00", "#2457a6", "#777777"])
def test_any_primary_colour_keeps_text_and_focus_readable(color: str) -> None:
    branding = Branding.from_settings(settings(brand_primary_color=color))

    assert contrast_ratio(color, branding.text_on_primary) >= TEXT_CONTRAST
    assert contrast_ratio(branding.accent_text, CARD_COLOR) >= TEXT_CONTRAST
    assert contrast_ratio(branding.focus_ring, CARD_COLOR) >= NON_TEXT_CONTRAST


def test_the_theme_is_custom_properties_only() -> None:
    branding = Branding.from_settings(
        settings(brand_primary_color="#AA0000", brand_background_color="#102030")
    )

    css = theme_css(branding)

    assert css.startswith(":root {\n")
    assert "  --brand-primary: #aa0000;\n" in css
    assert "  --brand-background: #102030;\n" in css
    assert "  --brand-on-background: #ffffff;\n" in css


@pytest.mark.parametrize("color", ["blue", "#abc", "#12345g", "#1234567", "rgb(0,0,0)", "#123456;"])
def test_a_colour_that_is_not_rrggbb_is_refused(color: str) -> None:
    with pytest.raises(ValidationError, match="AUTH_BRAND_PRIMARY_COLOR"):
        settings(brand_primary_color=color)
    with pytest.raises(ValidationError, match="AUTH_BRAND_BACKGROUND_COLOR"):
        settings(brand_background_color=color)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/logo.svg",
        "http://localhost:8000/logo.png",
        "http://127.0.0.1/logo.png",
        "http://[::1]:9000/logo.png",
    ],
)
def test_a_logo_is_https_or_on_loopback(url: str) -> None:
    assert settings(brand_logo_url=url).brand_logo_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example/logo.png",
        "//cdn.example/logo.png",
        "/static/logo.png",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "https://user:secret@cdn.example/logo.png",
        'https://cdn.example/logo.png" onerror="x',
        "https://cdn.example/a logo.png",
        "https://",
    ],
)
def test_any_other_logo_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="AUTH_BRAND_LOGO_URL"):
        settings(brand_logo_url=url)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_blank_or_overlong_brand_name_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="brand_name"):
        settings(brand_name=name)
