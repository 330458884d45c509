"""A link flow needs a recent sign-in and lives only as long as the sign-in that started it.

The attacks: a squatter who registered the victim's address saves a link flow and completes it
after the victim's first provider sign-in took the account over; a thief with an access token
starts a link and completes it after the owner's logout-all. Both would leave the attacker's
provider identity linked to the victim's account: a permanent way in.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import httpx
import pytest

from tests.mail.smtp_server import SmtpServer, html_part, smtp_server, text_part
from tests.oauth.authorization_server import Identity
from tests.oauth.conftest import provider_settings
from tests.oauth.flows import (
    Sessions,
    audit_count,
    finish,
    link_count,
    sign_in_with,
    start,
    tokens_from,
    verified_account,
)
from tests.oauth.provider_standin import OIDCStandin
from tests.support.flows import PASSWORD, assert_problem, bearer, refresh, register, sign_in
from tests.support.state import FrozenClock

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.usefixtures("app")

ADA_EMAIL = "ada@example.com"
ADA = Identity(sub="acme-ada-1", email=ADA_EMAIL, email_verified=True, name="Ada")
MALLORY = Identity(sub="acme-mallory", email="mallory@evil.example", email_verified=True)
CHALLENGE = 'Bearer error="insufficient_user_authentication", max_age=300'
NEW_PASSWORD = "a completely different passphrase"


@pytest.fixture
def settings_overrides(standin: OIDCStandin, smtp_server: SmtpServer) -> dict[str, object]:
    return provider_settings(
        standin,
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
    )


async def start_link(
    client: httpx.AsyncClient, access_token: str, provider: str = "acme"
) -> httpx.Response:
    return await client.get(f"/auth/oauth/{provider}/authorize", headers=bearer(access_token))


def assert_reauthentication_required(response: httpx.Response) -> None:
    """RFC 9470's answer: sign in again, no longer than 300 seconds ago; no flow started."""
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == CHALLENGE
    assert body["max_age"] == 300
    assert "set-cookie" not in response.headers


async def user_id(client: httpx.AsyncClient, access_token: str) -> str:
    response = await client.get("/users/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def mails(smtp_server: SmtpServer, expected: int) -> list[EmailMessage]:
    """Exactly `expected` mails: waits for them, then a moment for any extra one."""
    if expected:
        await smtp_server.wait_for(expected)
    await asyncio.sleep(0.2)
    assert len(smtp_server.messages) == expected, [m["Subject"] for m in smtp_server.messages]
    return list(smtp_server.messages)


# --- a saved flow dies with the sign-in that started it --------------------------------------


async def test_a_squatters_saved_link_flow_is_refused_after_the_owners_first_sign_in(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, smtp_server: SmtpServer
) -> None:
    # The squatter registers the victim's address, signs in and starts a link flow, keeping
    # the authorization URL and the cookie for later.
    await register(client, ADA_EMAIL)
    squatter = await sign_in(client, ADA_EMAIL)
    saved_url, saved_cookies = await start(client, "acme", headers=bearer(squatter["access_token"]))
    # The victim's first provider sign-in takes the never-verified account over: the
    # squatter's password and sessions are gone.
    owner = await tokens_from(client, "acme-two", standin, ADA)
    assert (
        await client.get("/users/me", headers=bearer(squatter["access_token"]))
    ).status_code == 401

    # The squatter completes the saved flow with an identity of their own.
    code, state = standin.approve(saved_url, MALLORY)
    response = await finish(client, "acme", code, state, saved_cookies)

    assert_problem(response, 400)
    assert await link_count(sessions) == 1  # the owner's own
    assert await audit_count(sessions, "oauth.link_refused") == 1
    mallory = await sign_in_with(client, "acme", standin, MALLORY)
    assert mallory.status_code == 200, mallory.text
    assert await user_id(client, mallory.json()["access_token"]) != await user_id(
        client, owner["access_token"]
    )
    # One mail: the owner's provider, linked when they took the account over.
    [mail] = await mails(smtp_server, 1)
    assert mail["To"] == ADA_EMAIL
    assert "acme-two" in mail["Subject"]


async def logout_all(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.post("/auth/logout-all", headers=bearer(access_token))


async def logout(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.post("/auth/logout", headers=bearer(access_token))


async def change_password(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    # Keeps the session, but retires its access tokens (a new token version).
    return await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(access_token),
    )


SIGN_IN_ENDINGS = {"logout-all": logout_all, "logout": logout, "password-change": change_password}


@pytest.mark.parametrize("ending", SIGN_IN_ENDINGS)
async def test_a_link_started_before_the_sign_in_ended_links_nothing(
    client: httpx.AsyncClient,
    standin: OIDCStandin,
    sessions: Sessions,
    smtp_server: SmtpServer,
    ending: str,
) -> None:
    ada = await verified_account(client, sessions)
    ada_id = await user_id(client, ada["access_token"])
    # A thief with Ada's fresh access token starts a link to their own identity...
    saved_url, saved_cookies = await start(client, "acme", headers=bearer(ada["access_token"]))
    # ...Ada notices and signs out (everywhere) or changes her password...
    ended = await SIGN_IN_ENDINGS[ending](client, ada["access_token"])
    assert ended.status_code == 204, ended.text

    # ...and the thief's saved flow is worth nothing.
    code, state = standin.approve(saved_url, MALLORY)
    response = await finish(client, "acme", code, state, saved_cookies)

    assert_problem(response, 400)
    assert await link_count(sessions) == 0
    assert await audit_count(sessions, "oauth.linked") == 0
    assert await audit_count(sessions, "oauth.link_refused") == 1
    mallory = await tokens_from(client, "acme", standin, MALLORY)
    assert await user_id(client, mallory["access_token"]) != ada_id
    # No "provider linked" notice (a password change has its own notice).
    expected = ["Your password was changed"] if ending == "password-change" else []
    assert [m["Subject"] for m in await mails(smtp_server, len(expected))] == expected


# --- starting a link needs a recent sign-in --------------------------------------------------


async def test_starting_a_link_with_an_old_sign_in_is_refused_with_a_challenge(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    ada = await verified_account(client, sessions)
    clock.advance(seconds=301)

    assert_reauthentication_required(await start_link(client, ada["access_token"]))


async def test_a_refreshed_token_does_not_count_as_a_recent_sign_in(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    # A stolen refresh token keeps a session alive, but never makes it "recent".
    ada = await verified_account(client, sessions)
    clock.advance(seconds=301)
    refreshed = await refresh(client, ada["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text

    assert_reauthentication_required(await start_link(client, refreshed.json()["access_token"]))


async def test_signing_in_again_allows_the_link(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    await verified_account(client, sessions)
    clock.advance(seconds=300)
    at_the_limit = await sign_in(client, ADA_EMAIL)
    clock.advance(seconds=300)

    assert (await start_link(client, at_the_limit["access_token"])).status_code == 200
    clock.advance(seconds=1)
    assert_reauthentication_required(await start_link(client, at_the_limit["access_token"]))
    fresh = await sign_in(client, ADA_EMAIL)
    assert (await start_link(client, fresh["access_token"])).status_code == 200


async def test_a_provider_sign_in_counts_as_a_recent_sign_in(
    client: httpx.AsyncClient, standin: OIDCStandin, clock: FrozenClock
) -> None:
    tokens = await tokens_from(client, "acme", standin, ADA)
    assert (await start_link(client, tokens["access_token"], "acme-two")).status_code == 200
    clock.advance(seconds=301)

    assert_reauthentication_required(await start_link(client, tokens["access_token"], "acme-two"))


# --- the owner's own link, and the mail about it ---------------------------------------------


async def test_a_fresh_link_is_made_and_mailed_to_the_owner(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, smtp_server: SmtpServer
) -> None:
    ada = await verified_account(client, sessions)
    work = Identity(sub="acme-ada-work", email="ada@work.example", email_verified=True)
    saved_url, saved_cookies = await start(client, "acme", headers=bearer(ada["access_token"]))
    # Refreshing meanwhile keeps the session, so the flow stays valid.
    assert (await refresh(client, ada["refresh_token"])).status_code == 200

    code, state = standin.approve(saved_url, work)
    response = await finish(client, "acme", code, state, saved_cookies)

    assert response.status_code == 200, response.text
    assert response.json()["account_id"] == work.sub
    assert await audit_count(sessions, "oauth.linked") == 1
    [mail] = await mails(smtp_server, 1)
    assert mail["To"] == ADA_EMAIL  # the account's address, not the identity's
    assert mail["Subject"] == "acme was linked to your account"
    for part in (text_part(mail), html_part(mail)):
        assert "ada@work.example" in part
        assert code not in part
        assert state not in part
        assert ada["access_token"] not in part


async def test_the_owner_is_mailed_when_a_sign_in_links_a_provider_to_the_account(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, smtp_server: SmtpServer
) -> None:
    await verified_account(client, sessions)

    await tokens_from(client, "acme", standin, ADA)
    await tokens_from(client, "acme", standin, ADA)  # already linked: nothing new to tell

    [mail] = await mails(smtp_server, 1)
    assert mail["To"] == ADA_EMAIL
    assert mail["Subject"] == "acme was linked to your account"
