"""In Chromium, the hosted sign-in page's provider button signs the user in at an OpenID Connect
provider (the stand-in of tests/oauth) and the flow comes back to the relying party."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.registration import register_relying_party
from tests.browser.screenshots import Snapshots
from tests.oauth.authorization_server import Identity
from tests.oauth.conftest import CLIENT_ID, CLIENT_SECRET, oidc_provider
from tests.oauth.provider_standin import OIDCStandin
from tests.support.live_server import LiveService
from tests.support.relying_party import RelyingParty


@pytest.fixture
def standin() -> Iterator[OIDCStandin]:
    provider = OIDCStandin(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    yield provider
    provider.stop()


@pytest.fixture
def settings_overrides(standin: OIDCStandin) -> dict[str, object]:
    # The service's own callback (at the live address) is the one allowed redirect URI.
    return {"oauth_providers": {"acme": oidc_provider(standin)}}


async def test_the_provider_button_signs_in_and_returns_to_the_app(
    page: Page,
    snapshot: Snapshots,
    standin: OIDCStandin,
    live_service: LiveService,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    relying_party: RelyingParty,
) -> None:
    await register_relying_party(
        service_client, live_root, relying_party, public=True, is_first_party=True
    )

    await page.goto(relying_party.login_url())
    await snapshot(page, "sign-in")
    await page.click("text=Sign in with acme")
    assert page.url.startswith(f"{standin.url}/authorize?")
    code, state = standin.approve(page.url, Identity(sub="ada-1", email="ada@example.com"))
    callback = httpx.URL(f"{live_service.url}/auth/oauth/acme/callback")
    await page.goto(str(callback.copy_merge_params({"code": code, "state": state})))
    result = page.locator("#result, #error")
    await expect(result).to_be_visible()
    shown = json.loads(await result.inner_text())

    assert shown["userinfo"]["email"] == "ada@example.com"
    assert shown["id_token_claims"]["amr"] == ["fed"]
