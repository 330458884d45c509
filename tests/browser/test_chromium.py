"""Chromium runs and shows the live service's pages: the browser tests' machinery works."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.support.live_server import LiveService


async def test_chromium_shows_the_live_services_api_documentation(
    page: Page, live_service: LiveService
) -> None:
    """The Swagger UI page is drawn by its script from the service's packaged assets, so
    chromium ran the page's JavaScript and fetched the OpenAPI document over the socket."""
    await page.goto(f"{live_service.url}/docs")

    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("authsvc")
    await expect(page.get_by_text("/auth/token", exact=True).first).to_be_visible()
