"""A user in Chromium signs in to a relying party (Authlib's client, tests/support/relying_party.py)
through the hosted pages: sign-in, the second step, consent, the refusals of `prompt`, deny, and
RP-initiated logout. Each test saves a screenshot of every page it passed through when it fails."""

from __future__ import annotations

import json
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.registration import register_relying_party
from tests.browser.screenshots import Snapshots
from tests.support.flows import PASSWORD, register, sign_in
from tests.support.mfa import Enrolled, enrol_totp
from tests.support.relying_party import RelyingParty


async def fill_sign_in(page: Page, snapshot: Snapshots) -> None:
    await expect(page.locator("h1")).to_have_text("Sign in")
    await snapshot(page, "sign-in")
    await page.fill("#username", "ada@example.com")
    await page.fill("#password", PASSWORD)
    await page.click("button:has-text('Sign in')")


async def shown_result(page: Page) -> dict[str, Any]:
    result = page.locator("#result, #error")
    await expect(result).to_be_visible()
    shown: dict[str, Any] = json.loads(await result.inner_text())
    return shown


async def test_a_user_signs_in_to_a_third_party_app_and_consents(
    page: Page,
    snapshot: Snapshots,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    relying_party: RelyingParty,
) -> None:
    await register(service_client, "ada@example.com", full_name="Ada Lovelace")
    await register_relying_party(service_client, live_root, relying_party)

    await page.goto(relying_party.login_url(scope="openid profile email offline_access"))
    await fill_sign_in(page, snapshot)
    await expect(page.locator("h1")).to_contain_text("relying party")
    await expect(page.get_by_text("See your email address")).to_be_visible()
    await snapshot(page, "consent")
    await page.click("button:has-text('Allow')")
    shown = await shown_result(page)
    await snapshot(page, "result")

    assert "error" not in shown, shown
    assert shown["userinfo"]["email"] == "ada@example.com"
    assert shown["id_token_claims"]["name"] == "Ada Lovelace"
    assert shown["has_refresh_token"] is True  # offline_access was granted
    grants = await service_client.get(
        "/users/me/grants",
        headers={"Authorization": f"Bearer {relying_party.results[-1].token['access_token']}"},
    )
    assert [grant["client_name"] for grant in grants.json()] == ["relying party"]

    # Remembered: the next sign-in of this browser asks nothing.
    await page.goto(relying_party.login_url(scope="openid profile email"))
    assert "error" not in await shown_result(page)


async def test_an_account_with_an_authenticator_passes_the_second_step(
    page: Page,
    snapshot: Snapshots,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    relying_party: RelyingParty,
) -> None:
    await register(service_client, "ada@example.com")
    tokens = await sign_in(service_client, "ada@example.com")
    enrolled: Enrolled = await enrol_totp(service_client, tokens["access_token"])
    await register_relying_party(
        service_client, live_root, relying_party, public=True, is_first_party=True
    )

    await page.goto(relying_party.login_url())
    await fill_sign_in(page, snapshot)
    await expect(page.locator("h1")).to_have_text("Two-step verification")
    await snapshot(page, "second-step")
    await page.fill("#otp", enrolled.code(steps=1))  # enrolment used the current one
    await page.click("button:has-text('Verify')")
    shown = await shown_result(page)

    assert shown["id_token_claims"]["acr"] == "aal2"
    assert shown["id_token_claims"]["amr"] == ["pwd", "otp"]


async def test_prompt_none_without_a_session_answers_login_required(
    page: Page,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    relying_party: RelyingParty,
) -> None:
    await register_relying_party(
        service_client, live_root, relying_party, public=True, is_first_party=True
    )

    await page.goto(relying_party.login_url(prompt="none"))

    assert (await shown_result(page))["error"] == "login_required"


async def test_prompt_login_shows_the_sign_in_page_to_a_signed_in_browser(
    page: Page,
    snapshot: Snapshots,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    relying_party: RelyingParty,
) -> None:
    await register(service_client, "ada@example.com")
    await register_relying_party(
        service_client, live_root, relying_party, public=True, is_first_party=True
    )
    await page.goto(relying_party.login_url())
    await fill_sign_in(page, snapshot)
    first = await shown_result(page)

    await page.goto(relying_party.login_url(prompt="login"))
    await fill_sign_in(page, snapshot)
    second = await shown_result(page)

    assert second["id_token_claims"]["auth_time"] >= first["id_token_claims"]["auth_time"]
    assert second["sub"] == first["sub"]


async def test_denying_consent_sends_access_denied_to_the_app(
    page: Page,
    snapshot: Snapshots,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    relying_party: RelyingParty,
) -> None:
    await register(service_client, "ada@example.com")
    await register_relying_party(service_client, live_root, relying_party)

    await page.goto(relying_party.login_url())
    await fill_sign_in(page, snapshot)
    await snapshot(page, "consent")
    await page.click("button:has-text('Deny')")

    assert (await shown_result(page))["error"] == "access_denied"


async def test_rp_initiated_logout_signs_the_browser_out_and_returns_to_the_app(
    page: Page,
    snapshot: Snapshots,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    relying_party: RelyingParty,
) -> None:
    await register(service_client, "ada@example.com")
    await register_relying_party(
        service_client, live_root, relying_party, public=True, is_first_party=True
    )
    await page.goto(relying_party.login_url())
    await fill_sign_in(page, snapshot)
    await shown_result(page)
    access_token = relying_party.results[-1].token["access_token"]

    await page.goto(relying_party.logout_url)
    await expect(page.locator("h1")).to_contain_text("Sign out")
    await snapshot(page, "sign-out")
    await page.click("button:has-text('Sign out')")
    await expect(page.locator("body")).to_contain_text("signed out", ignore_case=True)

    assert relying_party.sign_outs[-1].state_matches
    me = await service_client.get("/users/me", headers={"Authorization": f"Bearer {access_token}"})
    assert me.status_code == 401
    await page.goto(relying_party.login_url(prompt="none"))
    assert (await shown_result(page))["error"] == "login_required"
