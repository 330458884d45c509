"""Signing in with a provider from the hosted sign-in page: the buttons, the way to the provider
and back through the service's own callback to the authorization request, the second step for
an account with an authenticator, and the error pages. Against the real OpenID Connect
stand-in ("acme"), as a browser (the client's cookie jar) and a relying party go through it."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.oauth.authorization_server import Identity
from tests.oauth.flows import COOKIE_NAME, own_callback, tokens_from, verified_account
from tests.oauth.provider_standin import OIDCStandin
from tests.support.admins import admin_headers
from tests.support.authorization import (
    RelyingParty,
    authorize,
    hidden_fields,
    location,
    query_of,
    redeem,
    register_relying_party,
)
from tests.support.flows import bearer, register
from tests.support.mfa import enrol_totp
from tests.support.state import FrozenClock

pytestmark = pytest.mark.usefixtures("app")

ADA = Identity(sub="acme-ada-1", email="ada@example.com", email_verified=True, name="Ada")
_BUTTON = re.compile(r'<a class="button secondary" href="([^"]+)">([^<]+)</a>')


@pytest.fixture
async def relying_party(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> RelyingParty:
    """A first-party client (no consent page), registered by an administrator."""
    admin = await admin_headers(client, sessions, superuser=True)
    return await register_relying_party(client, admin, public=True, first_party=True)


def buttons(page: httpx.Response) -> dict[str, str]:
    """The sign-in page's provider buttons: label -> link."""
    assert page.status_code == 200, page.text
    return {html.unescape(label): html.unescape(url) for url, label in _BUTTON.findall(page.text)}


async def sign_in_page_for(client: httpx.AsyncClient, rp: RelyingParty) -> httpx.Response:
    """The authorization request of a browser without a session, and the sign-in page it is
    sent to."""
    sent_to = location(await authorize(client, rp))
    assert sent_to.startswith("/login?"), sent_to
    return await client.get(sent_to)


async def through_provider(
    client: httpx.AsyncClient,
    standin: OIDCStandin,
    button: str,
    identity: Identity = ADA,
) -> httpx.Response:
    """Press `button`, sign in at the provider as `identity`, and come back: the callback's
    answer."""
    to_provider = await client.get(button)
    code, state = standin.approve(location(to_provider), identity)
    return await client.get("/auth/oauth/acme/callback", params={"code": code, "state": state})


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def code_from(client: httpx.AsyncClient, rp: RelyingParty, back: httpx.Response) -> str:
    """Follow the sign-in's redirect back to the authorization request: the code the client
    gets."""
    answer = location(await client.get(location(back)))
    assert answer.startswith(rp.redirect_uri + "?"), answer
    assert query_of(answer)["state"] == rp.state
    return query_of(answer)["code"]


# --- the buttons -----------------------------------------------------------------------------


async def test_the_sign_in_page_has_a_button_per_provider_back_to_the_same_request(
    client: httpx.AsyncClient, relying_party: RelyingParty
) -> None:
    page = await sign_in_page_for(client, relying_party)

    found = buttons(page)
    assert list(found) == [
        "Sign in with acme",
        "Sign in with acme-two",
        "Sign in with GitHub",
        "Sign in with Google",
    ]
    next_url = hidden_fields(page)["next"]
    assert found["Sign in with acme"].startswith("/login/acme?")
    assert query_of(found["Sign in with acme"]) == {"next": next_url}
    assert query_of(found["Sign in with GitHub"]) == {"next": next_url}


async def test_a_button_sends_the_browser_to_the_provider_bound_to_it_by_a_cookie(
    client: httpx.AsyncClient, relying_party: RelyingParty, standin: OIDCStandin
) -> None:
    button = buttons(await sign_in_page_for(client, relying_party))["Sign in with acme"]

    to_provider = await client.get(button)

    assert to_provider.status_code == 302
    assert location(to_provider).startswith(f"{standin.url}/authorize?")
    assert query_of(location(to_provider))["redirect_uri"] == own_callback("acme")
    assert to_provider.headers["cache-control"] == "no-store"
    cookie = to_provider.headers["set-cookie"].lower()
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "path=/auth/oauth" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


async def test_an_unknown_provider_gets_the_error_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/login/nope", params={"next": "/oauth/authorize?x=1"})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "No such sign-in provider." in response.text


# --- back to the authorization request -------------------------------------------------------


async def test_a_provider_sign_in_goes_back_to_the_request_and_the_client_gets_its_code(
    client: httpx.AsyncClient, relying_party: RelyingParty, standin: OIDCStandin
) -> None:
    page = await sign_in_page_for(client, relying_party)
    back = await through_provider(client, standin, buttons(page)["Sign in with acme"])

    assert back.status_code == 303
    assert location(back) == hidden_fields(page)["next"]
    assert f'{COOKIE_NAME}=""' in back.headers["set-cookie"]  # the flow is over
    code = await code_from(client, relying_party, back)
    tokens = await redeem(client, relying_party, code)

    assert tokens.status_code == 200, tokens.text
    assert claims(tokens.json()["access_token"])["amr"] == ["fed"]
    assert claims(tokens.json()["id_token"])["amr"] == ["fed"]
    me = await client.get("/users/me", headers=bearer(tokens.json()["access_token"]))
    assert me.json()["email"] == "ada@example.com"


async def test_a_long_authorization_request_survives_the_trip(
    client: httpx.AsyncClient, relying_party: RelyingParty, standin: OIDCStandin
) -> None:
    # A state of 1900 characters is one the authorization endpoint takes: the way back is
    # longer than 2000.
    relying_party.state = "s" * 1900
    page = await sign_in_page_for(client, relying_party)
    assert len(hidden_fields(page)["next"]) > 2000

    back = await through_provider(client, standin, buttons(page)["Sign in with acme"])

    assert location(back) == hidden_fields(page)["next"]
    await code_from(client, relying_party, back)


async def test_with_a_second_factor_the_callback_asks_for_it_and_the_code_finishes(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    relying_party: RelyingParty,
    standin: OIDCStandin,
    clock: FrozenClock,
) -> None:
    tokens = await verified_account(client, sessions)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    page = await sign_in_page_for(client, relying_party)

    second_step = await through_provider(client, standin, buttons(page)["Sign in with acme"])

    assert second_step.status_code == 200
    assert "Two-step verification" in second_step.text
    fields = hidden_fields(second_step)
    assert fields["next"] == hidden_fields(page)["next"]
    assert fields["mfa_token"]
    back = await client.post("/login", data={**fields, "otp": enrolled.code(clock.now, steps=1)})
    assert back.status_code == 303
    code = await code_from(client, relying_party, back)
    issued = (await redeem(client, relying_party, code)).json()
    assert claims(issued["access_token"])["amr"] == ["fed", "otp"]
    assert claims(issued["access_token"])["acr"] == "aal2"


async def test_the_two_step_page_is_no_way_around_the_second_factor(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    relying_party: RelyingParty,
    standin: OIDCStandin,
    clock: FrozenClock,
) -> None:
    tokens = await verified_account(client, sessions)
    await enrol_totp(client, tokens["access_token"], at=clock.now)
    page = await sign_in_page_for(client, relying_party)
    second_step = await through_provider(client, standin, buttons(page)["Sign in with acme"])

    wrong = await client.post("/login", data={**hidden_fields(second_step), "otp": "000000"})
    still_signed_out = await authorize(client, relying_party)

    assert wrong.status_code == 400
    assert location(still_signed_out).startswith("/login?")
    # A challenge of the page is not one a client can answer at the token endpoint.
    at_token_endpoint = await client.post(
        "/auth/token",
        data={
            "grant_type": "urn:authsvc:params:oauth:grant-type:mfa",
            "mfa_token": hidden_fields(second_step)["mfa_token"],
            "otp": "000000",
        },
    )
    assert at_token_endpoint.status_code == 400
    assert at_token_endpoint.json()["error"] == "invalid_grant", at_token_endpoint.text


@pytest.mark.parametrize(
    "elsewhere",
    ["https://evil.example/oauth/authorize?x=1", "//evil.example/oauth/authorize?x=1", "/users/me"],
)
async def test_a_next_pointing_elsewhere_ends_on_the_signed_in_page(
    client: httpx.AsyncClient, standin: OIDCStandin, elsewhere: str
) -> None:
    back = await through_provider(client, standin, f"/login/acme?next={elsewhere}")

    assert back.status_code == 200
    assert "location" not in back.headers
    assert "You are signed in." in back.text
    assert "authsvc_session=" in back.headers["set-cookie"]


# --- refusals --------------------------------------------------------------------------------


async def test_a_replayed_callback_gets_the_error_page_and_no_session(
    client: httpx.AsyncClient, relying_party: RelyingParty, standin: OIDCStandin
) -> None:
    page = await sign_in_page_for(client, relying_party)
    to_provider = await client.get(buttons(page)["Sign in with acme"])
    flow_cookie = client.cookies[COOKIE_NAME]
    code, state = standin.approve(location(to_provider), ADA)
    callback = f"/auth/oauth/acme/callback?code={code}&state={state}"
    assert (await client.get(callback)).status_code == 303
    client.cookies.clear()

    replayed = await client.get(callback, headers={"Cookie": f"{COOKIE_NAME}={flow_cookie}"})

    assert replayed.status_code == 400
    assert replayed.headers["content-type"].startswith("text/html")
    assert "cannot be completed" in replayed.text
    assert "authsvc_session" not in replayed.headers.get("set-cookie", "")


async def test_a_callback_from_another_browser_gets_the_error_page(
    client: httpx.AsyncClient, relying_party: RelyingParty, standin: OIDCStandin
) -> None:
    page = await sign_in_page_for(client, relying_party)
    to_provider = await client.get(buttons(page)["Sign in with acme"])
    code, state = standin.approve(location(to_provider), ADA)
    client.cookies.clear()  # another browser: without the flow's cookie

    response = await client.get("/auth/oauth/acme/callback", params={"code": code, "state": state})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


async def test_the_provider_refusing_gets_the_error_page(
    client: httpx.AsyncClient, relying_party: RelyingParty, standin: OIDCStandin
) -> None:
    page = await sign_in_page_for(client, relying_party)
    to_provider = await client.get(buttons(page)["Sign in with acme"])
    state = query_of(location(to_provider))["state"]

    refused = await client.get(
        "/auth/oauth/acme/callback", params={"error": "access_denied", "state": state}
    )

    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "did not authorize the sign-in" in refused.text


async def test_an_unverified_address_of_an_existing_account_gets_the_conflict_page(
    client: httpx.AsyncClient, relying_party: RelyingParty, standin: OIDCStandin
) -> None:
    await register(client, "ada@example.com")
    page = await sign_in_page_for(client, relying_party)
    unverified = Identity(sub="acme-ada-1", email="ada@example.com", email_verified=False)

    refused = await through_provider(
        client, standin, buttons(page)["Sign in with acme"], unverified
    )

    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("text/html")
    assert "link acme from it" in refused.text


# --- the API's flow --------------------------------------------------------------------------


async def test_a_flow_started_through_the_api_still_answers_json(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    tokens = await tokens_from(client, "acme", standin, ADA)
    assert claims(tokens["access_token"])["amr"] == ["fed"]

    replayed = await client.get(
        "/auth/oauth/acme/callback", params={"code": "c", "state": "a-used-state"}
    )
    assert replayed.status_code == 400
    assert replayed.headers["content-type"] == "application/problem+json"
