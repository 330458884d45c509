"""The service serves the hosted pages' stylesheets, cacheable for long (pages link them under a
fingerprint of their content), with the service-wide security headers."""

from __future__ import annotations

import httpx
import pytest

from app.api.pages.stylesheets import stylesheet


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"brand_primary_color": "#7A1F5C", "brand_background_color": "#FAFAF5"}


def assert_cacheable_css(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_the_stylesheet_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/pages/assets/authsvc.css")

    assert_cacheable_css(response)
    assert response.text == stylesheet()
    assert "max-width: 26rem" in response.text


async def test_the_theme_carries_the_configured_colours(client: httpx.AsyncClient) -> None:
    response = await client.get("/pages/theme.css")

    assert_cacheable_css(response)
    assert "--brand-primary: #7a1f5c;" in response.text
    assert "--brand-background: #fafaf5;" in response.text
