"""The authorization-code flow as a browser and a relying party go through it: `/oauth/authorize`,
the hosted sign-in and consent pages, and the code's redemption at the token endpoint."""

from __future__ import annotations

import httpx
import pytest

from tests.support.authorization import (
    RelyingParty,
    approve,
    authorize,
    code_for,
    location,
    query_of,
    redeem,
    register_relying_party,
    sign_in_on_page,
    tokens_for,
)
from tests.support.flows import bearer, register, sign_in
from tests.support.state import FrozenClock


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com", username="ada", full_name="Ada Lovelace")


@pytest.fixture
async def first_party(client: httpx.AsyncClient, root: dict[str, str]) -> RelyingParty:
    return await register_relying_party(client, root, public=True, first_party=True)


@pytest.fixture
async def third_party(client: httpx.AsyncClient, root: dict[str, str]) -> RelyingParty:
    return await register_relying_party(client, root)


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_back_to_the_request(
    client: httpx.AsyncClient, ada: None, first_party: RelyingParty
) -> None:
    response = await authorize(client, first_party)
    sign_in_url = location(response)
    assert sign_in_url.startswith("/login?")
    assert query_of(sign_in_url)["next"].startswith("/oauth/authorize?")

    signed_in = await sign_in_on_page(client, sign_in_url)
    back = await client.get(location(signed_in))

    answer = query_of(location(back))
    assert location(back).startswith(first_party.redirect_uri + "?")
    assert answer["state"] == first_party.state
    assert answer["iss"] == "http://localhost:8000"
    assert len(answer["code"]) >= 32


async def test_a_code_redeemed_with_its_verifier_gives_tokens_for_the_signed_in_user(
    client: httpx.AsyncClient, ada: None, first_party: RelyingParty
) -> None:
    tokens = await tokens_for(client, first_party)

    assert tokens["token_type"] == "bearer"
    assert set(tokens["scope"].split()) == {"openid", "profile", "email"}
    assert tokens["refresh_token"]  # a first-party client may refresh
    me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"


async def test_a_signed_in_browser_gets_a_code_without_seeing_a_page(
    client: httpx.AsyncClient, ada: None, first_party: RelyingParty
) -> None:
    await code_for(client, first_party)

    again = await authorize(client, first_party)

    assert location(again).startswith(first_party.redirect_uri)
    assert "code" in query_of(location(again))


async def test_a_third_party_client_needs_consent_once_per_scope_set(
    client: httpx.AsyncClient, ada: None, third_party: RelyingParty
) -> None:
    first = await authorize(client, third_party)
    signed_in = await sign_in_on_page(client, location(first))
    consent_page = await client.get(location(signed_in))
    assert consent_page.status_code == 200
    assert "Photo Printer" in consent_page.text
    assert "See your email address" in consent_page.text
    approved = await approve(client, consent_page)
    assert approved.status_code == 303
    assert "code" in query_of(location(approved))

    remembered = await authorize(client, third_party)
    assert location(remembered).startswith(third_party.redirect_uri)

    wider = await authorize(client, third_party, scope="openid profile email offline_access")
    assert 'name="decision"' in wider.text  # the consent page again

    asked_again = await authorize(client, third_party, prompt="consent")
    assert 'name="decision"' in asked_again.text


async def test_denying_consent_answers_access_denied_with_state_and_issuer(
    client: httpx.AsyncClient, ada: None, third_party: RelyingParty
) -> None:
    first = await authorize(client, third_party)
    signed_in = await sign_in_on_page(client, location(first))
    consent_page = await client.get(location(signed_in))

    denied = await approve(client, consent_page, decision="deny")

    answer = query_of(location(denied))
    assert answer["error"] == "access_denied"
    assert answer["state"] == third_party.state
    assert answer["iss"] == "http://localhost:8000"
    assert "code" not in answer


async def test_a_third_party_client_gets_a_refresh_token_only_with_offline_access(
    client: httpx.AsyncClient, ada: None, third_party: RelyingParty
) -> None:
    without = await tokens_for(client, third_party)
    assert "refresh_token" not in without or without["refresh_token"] is None

    with_offline = await tokens_for(client, third_party, scope="openid offline_access")
    assert with_offline["refresh_token"]
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": with_offline["refresh_token"]},
        auth=httpx.BasicAuth(third_party.client_id, third_party.client_secret or ""),
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_prompt_login_asks_for_the_password_again(
    client: httpx.AsyncClient, ada: None, first_party: RelyingParty
) -> None:
    await code_for(client, first_party)

    again = await authorize(client, first_party, prompt="login")
    sign_in_url = location(again)
    assert sign_in_url.startswith("/login?")
    signed_in = await sign_in_on_page(client, sign_in_url)
    back = await client.get(location(signed_in))
    assert "code" in query_of(location(back))  # not a loop back to the sign-in page


async def test_max_age_older_than_the_sign_in_asks_for_it_again(
    client: httpx.AsyncClient, ada: None, first_party: RelyingParty, clock: FrozenClock
) -> None:
    await code_for(client, first_party)
    clock.advance(seconds=120)

    recent_enough = await authorize(client, first_party, max_age="300")
    too_old = await authorize(client, first_party, max_age="60")

    assert "code" in query_of(location(recent_enough))
    assert location(too_old).startswith("/login?")


async def test_a_code_issued_before_logout_all_is_refused(
    client: httpx.AsyncClient, ada: None, first_party: RelyingParty
) -> None:
    code = await code_for(client, first_party)
    elsewhere = await sign_in(client, "ada@example.com")
    await client.post("/auth/logout-all", headers=bearer(elsewhere["access_token"]))

    response = await redeem(client, first_party, code)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
