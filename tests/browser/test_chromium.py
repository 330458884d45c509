"""Chromium runs, shows the live service's pages and follows the relying party: the browser
tests' machinery works."""

from __future__ import annotations

import json

import httpx
from playwright.async_api import Page, expect

from tests.browser.screenshots import Snapshots
from tests.oauth.authorization_server import Identity
from tests.oauth.provider_standin import OIDCStandin
from tests.support.live_server import LiveService
from tests.support.relying_party import RelyingParty


async def test_chromium_shows_the_live_services_api_documentation(
    page: Page, live_service: LiveService
) -> None:
    """The Swagger UI page is drawn by its script from the service's packaged assets, so
    chromium ran the page's JavaScript and fetched the OpenAPI document over the socket."""
    await page.goto(f"{live_service.url}/docs")

    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("authsvc")
    await expect(page.get_by_text("/auth/token", exact=True).first).to_be_visible()


async def test_chromium_goes_from_the_relying_party_to_the_provider_and_back_to_the_result(
    page: Page, snapshot: Snapshots
) -> None:
    """The relying party's redirects and result page in a real browser, with the OpenID
    Connect stand-in of tests/oauth as the provider (it approves sign-ins without a page)."""
    standin = OIDCStandin(client_id="browser-rp", client_secret="browser-rp-secret").start()
    rp = RelyingParty(provider=standin.url).start()
    try:
        rp.use_client("browser-rp", "browser-rp-secret")
        await page.goto(rp.login_url())
        await snapshot(page, "provider")
        assert page.url.startswith(f"{standin.url}/authorize?")

        code, state = standin.approve(page.url, Identity(sub="ada-42", email="ada@example.com"))
        await page.goto(str(httpx.URL(rp.redirect_uri, params={"code": code, "state": state})))

        shown = json.loads(await page.locator("#result").inner_text())
        assert shown["sub"] == "ada-42"
        assert shown["userinfo"]["email"] == "ada@example.com"
        assert rp.results[-1].sub == "ada-42"
    finally:
        rp.stop()
        standin.stop()
