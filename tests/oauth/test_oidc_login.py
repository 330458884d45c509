"""Sign-in with a generic OpenID Connect provider, against the real stand-in over HTTP:
the authorization request, the callback's state/cookie/PKCE/nonce checks, ID token
verification, the provider failing, and what a sign-in creates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from tests.oauth.authorization_server import Identity, s256
from tests.oauth.conftest import CLIENT_ID, HTTP_TIMEOUT_SECONDS, provider_settings
from tests.oauth.flows import (
    COOKIE_NAME,
    FRONTEND_CALLBACK,
    Sessions,
    audit_count,
    finish,
    link_count,
    own_callback,
    query_of,
    sign_in_with,
    start,
    tokens_from,
    user_count,
)
from tests.oauth.provider_standin import OIDCStandin
from tests.support.admins import update_user
from tests.support.flows import PASSWORD, assert_problem, bearer, password_grant, refresh
from tests.support.state import FrozenClock

pytestmark = pytest.mark.usefixtures("app")

ADA = Identity(sub="acme-ada-1", email="ada@example.com", email_verified=True, name="Ada")


async def me(client: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    response = await client.get("/users/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the authorization request ---------------------------------------------------------------


async def test_authorization_url_carries_state_pkce_s256_and_nonce(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, _ = await start(client, "acme")

    assert authorization_url.startswith(f"{standin.url}/authorize?")
    params = query_of(authorization_url)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == own_callback("acme")
    assert set(params["scope"].split()) >= {"openid", "email", "profile"}
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 22  # >= 128 bits
    assert len(params["nonce"]) >= 22
    # The stand-in's own /authorize accepts the request as it stands.
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(authorization_url)).status_code == 200


async def test_each_flow_gets_its_own_state_challenge_and_nonce(
    client: httpx.AsyncClient,
) -> None:
    first, _ = await start(client, "acme")
    second, _ = await start(client, "acme")

    for name in ("state", "code_challenge", "nonce"):
        assert query_of(first)[name] != query_of(second)[name], name


async def test_the_flow_cookie_is_httponly_lax_and_scoped_to_the_oauth_paths(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/auth/oauth/acme/authorize")

    assert response.status_code == 200
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    morsel = cookie[COOKIE_NAME]
    assert morsel.value
    assert morsel["httponly"]
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/auth/oauth"
    # The cookie is a browser secret, not the state itself.
    assert morsel.value != query_of(response.json()["authorization_url"])["state"]


async def test_an_allowed_redirect_uri_is_used_end_to_end(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, cookies = await start(client, "acme", redirect_uri=FRONTEND_CALLBACK)
    assert query_of(authorization_url)["redirect_uri"] == FRONTEND_CALLBACK
    code, state = standin.approve(authorization_url, ADA)

    response = await finish(client, "acme", code, state, cookies)

    assert response.status_code == 200, response.text
    assert standin.token_requests[-1].form["redirect_uri"] == FRONTEND_CALLBACK


async def test_a_redirect_uri_not_allowed_is_refused(client: httpx.AsyncClient) -> None:
    for redirect_uri in (
        "https://evil.example/oauth/callback",
        f"{FRONTEND_CALLBACK}/../../steal",
        f"{FRONTEND_CALLBACK}?next=https://evil.example",
        "https://app.example.com.evil.example/oauth/callback",
    ):
        response = await client.get(
            "/auth/oauth/acme/authorize", params={"redirect_uri": redirect_uri}
        )
        assert_problem(response, 400)
        assert "set-cookie" not in response.headers, redirect_uri


class TestDefaultRedirectUris:
    """No `oauth_redirect_uris`: only the service's own callback is allowed."""

    @pytest.fixture
    def settings_overrides(self, standin: OIDCStandin) -> dict[str, object]:
        return provider_settings(standin, oauth_redirect_uris=[])

    async def test_the_own_callback_is_the_default(
        self, client: httpx.AsyncClient, standin: OIDCStandin
    ) -> None:
        authorization_url, cookies = await start(client, "acme")
        assert query_of(authorization_url)["redirect_uri"] == own_callback("acme")
        code, state = standin.approve(authorization_url, ADA)

        assert (await finish(client, "acme", code, state, cookies)).status_code == 200

    async def test_any_other_redirect_uri_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.get(
            "/auth/oauth/acme/authorize", params={"redirect_uri": FRONTEND_CALLBACK}
        )

        assert_problem(response, 400)


async def test_an_unknown_provider_is_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/auth/oauth/nope/authorize"), 404)
    assert_problem(
        await client.get("/auth/oauth/nope/callback", params={"code": "c", "state": "s"}), 404
    )


# --- a sign-in -------------------------------------------------------------------------------


async def test_a_new_identity_creates_a_verified_user_without_password(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    response = await sign_in_with(client, "acme", standin, ADA)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["expires_in"] > 0
    assert tokens["refresh_token"]
    user = await me(client, tokens["access_token"])
    assert user["email"] == "ada@example.com"
    assert user["is_verified"] is True
    assert user["is_active"] is True
    # No password was ever set: the password grant cannot sign this user in.
    for password in (PASSWORD, "", "None"):
        assert (await password_grant(client, "ada@example.com", password)).status_code == 400
    # The refresh token is a normal one.
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200
    assert await audit_count(sessions, "oauth.login") == 1
    accounts = await client.get("/users/me/oauth-accounts", headers=bearer(tokens["access_token"]))
    assert [(a["provider"], a["account_id"]) for a in accounts.json()] == [("acme", ADA.sub)]


async def test_a_returning_identity_signs_in_to_the_same_user(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    first = await tokens_from(client, "acme", standin, ADA)
    second = await tokens_from(client, "acme", standin, ADA)

    assert (await me(client, first["access_token"]))["id"] == (
        await me(client, second["access_token"])
    )["id"]
    assert await user_count(sessions) == 1
    assert await link_count(sessions) == 1
    assert await audit_count(sessions, "oauth.login") == 2


async def test_a_returning_identity_is_found_by_subject_not_by_email(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    first = await tokens_from(client, "acme", standin, ADA)
    renamed = Identity(sub=ADA.sub, email="ada.lovelace@example.org", email_verified=True)

    second = await tokens_from(client, "acme", standin, renamed)

    assert (await me(client, second["access_token"]))["id"] == (
        await me(client, first["access_token"])
    )["id"]
    assert await user_count(sessions) == 1


async def test_the_token_request_carries_the_verifier_of_the_challenge(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)

    response = await finish(client, "acme", code, state, cookies)

    assert response.status_code == 200, response.text
    [token_request] = standin.token_requests
    assert token_request.form["grant_type"] == "authorization_code"
    assert token_request.form["code"] == code
    assert token_request.form["redirect_uri"] == own_callback("acme")
    assert (
        s256(token_request.form["code_verifier"]) == query_of(authorization_url)["code_challenge"]
    )
    assert token_request.client_authentication in ("client_secret_basic", "client_secret_post")


async def test_the_email_comes_from_userinfo_when_the_id_token_has_none(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    standin.alter_next_id_token(email=None, email_verified=None)

    tokens = await tokens_from(client, "acme", standin, ADA)

    assert standin.requests["/userinfo"] == 1
    assert (await me(client, tokens["access_token"]))["email"] == "ada@example.com"


async def test_userinfo_about_another_subject_is_not_used(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    # OpenID Connect Core 5.3.4: userinfo whose sub differs from the ID token's MUST NOT be
    # used; else the email of one account could be attached to another.
    standin.alter_next_id_token(email=None, email_verified=None)
    standin.alter_userinfo(sub="acme-somebody-else", email="boss@example.com")

    response = await sign_in_with(client, "acme", standin, ADA)

    assert_problem(response, 400, 502)
    assert await user_count(sessions) == 0


async def test_an_unverified_email_never_makes_a_verified_account(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    unverified = Identity(sub="acme-eve", email="victim@example.com", email_verified=False)

    response = await sign_in_with(client, "acme", standin, unverified)

    # Refusing is fine; signing in is fine too, but the service must not vouch for a mailbox
    # nobody proved (else the real owner could never register it).
    assert response.status_code in (200, 400, 403, 409, 422), response.text
    if response.status_code == 200:
        assert (await me(client, response.json()["access_token"]))["is_verified"] is False


async def test_a_deactivated_user_cannot_sign_in_through_a_provider(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    await tokens_from(client, "acme", standin, ADA)
    async with sessions() as session:
        await update_user(session, "ada@example.com", is_active=False)

    response = await sign_in_with(client, "acme", standin, ADA)

    assert_problem(response, 401, 403)


# --- state, cookie and replay ----------------------------------------------------------------


async def test_a_state_cannot_be_used_twice(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)
    assert (await finish(client, "acme", code, state, cookies)).status_code == 200

    replay = await finish(client, "acme", code, state, cookies)

    assert_problem(replay, 400)
    assert len(standin.token_requests) == 1  # refused before the provider was asked again


async def test_two_callbacks_racing_with_one_state_sign_in_once(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)

    responses = await asyncio.gather(
        *(finish(client, "acme", code, state, cookies) for _ in range(4))
    )

    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400]
    assert len(standin.token_requests) == 1
    assert await user_count(sessions) == 1


async def test_a_callback_without_the_flow_cookie_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    authorization_url, _ = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)

    response = await finish(client, "acme", code, state, cookies={})

    assert_problem(response, 400)
    assert standin.token_requests == []
    assert await user_count(sessions) == 0


async def test_a_callback_with_the_cookie_of_another_flow_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    # The attacker starts a flow and gets the victim's browser (with its own cookie) to
    # finish it: login CSRF. The state belongs to another browser.
    attacker_url, _attacker_cookies = await start(client, "acme")
    _victim_url, victim_cookies = await start(client, "acme")
    code, state = standin.approve(attacker_url, ADA)

    response = await finish(client, "acme", code, state, victim_cookies)

    assert_problem(response, 400)
    assert standin.token_requests == []
    assert await user_count(sessions) == 0


async def test_a_forged_cookie_is_refused(client: httpx.AsyncClient, standin: OIDCStandin) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)

    response = await finish(client, "acme", code, state, {COOKIE_NAME: "x" * 43})

    assert_problem(response, 400)
    assert standin.token_requests == []
    assert cookies[COOKIE_NAME] != "x" * 43


async def test_an_unknown_or_missing_state_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, _ = standin.approve(authorization_url, ADA)

    assert_problem(await finish(client, "acme", code, "made-up-state", cookies), 400)
    assert_problem(await finish(client, "acme", code, None, cookies), 400)
    assert standin.token_requests == []


async def test_a_state_of_another_provider_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)

    response = await finish(client, "acme-two", code, state, cookies)

    assert_problem(response, 400)
    assert standin.token_requests == []


async def test_an_expired_state_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, clock: FrozenClock
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)
    clock.advance(seconds=601)

    response = await finish(client, "acme", code, state, cookies)

    assert_problem(response, 400)
    assert standin.token_requests == []


async def test_a_state_is_good_until_it_expires(
    client: httpx.AsyncClient, standin: OIDCStandin, clock: FrozenClock
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)
    clock.advance(seconds=590)

    assert (await finish(client, "acme", code, state, cookies)).status_code == 200


async def test_access_denied_at_the_provider_is_a_bad_request(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    authorization_url, cookies = await start(client, "acme")
    state = query_of(authorization_url)["state"]

    response = await finish(
        client,
        "acme",
        None,
        state,
        cookies,
        error="access_denied",
        error_description="The user said no",
    )

    assert_problem(response, 400)
    assert standin.token_requests == []
    assert await user_count(sessions) == 0


async def test_a_code_the_provider_rejects_signs_nobody_in(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    authorization_url, cookies = await start(client, "acme")
    _, state = standin.approve(authorization_url, ADA)

    response = await finish(client, "acme", "not-the-code", state, cookies)

    assert_problem(response, 400, 502)
    assert len(standin.token_requests) == 1
    assert await user_count(sessions) == 0


# --- the ID token ----------------------------------------------------------------------------


async def test_an_id_token_with_another_nonce_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    standin.alter_next_id_token(nonce="nonce-of-another-sign-in")

    response = await sign_in_with(client, "acme", standin, ADA)

    assert_problem(response, 400, 502)
    assert await user_count(sessions) == 0


async def test_an_id_token_without_nonce_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    standin.alter_next_id_token(nonce=None)

    response = await sign_in_with(client, "acme", standin, ADA)

    assert_problem(response, 400, 502)
    assert await user_count(sessions) == 0


@pytest.mark.parametrize("kid", [None, "forger-key"], ids=["provider-kid", "unknown-kid"])
async def test_an_id_token_signed_with_a_foreign_key_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, kid: str | None
) -> None:
    standin.forge_next_id_token(kid=kid)

    response = await sign_in_with(client, "acme", standin, ADA)

    assert_problem(response, 400, 502)
    assert await user_count(sessions) == 0


async def test_an_unsigned_id_token_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    standin.send_unsigned_next_id_token()

    response = await sign_in_with(client, "acme", standin, ADA)

    assert_problem(response, 400, 502)
    assert await user_count(sessions) == 0


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-client"},
        {"aud": ["another-client"]},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        {"sub": None},
    ],
    ids=["wrong-aud", "wrong-aud-list", "wrong-iss", "expired", "no-sub"],
)
async def test_an_id_token_with_bad_claims_is_refused(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, claims: dict[str, Any]
) -> None:
    standin.alter_next_id_token(**claims)

    response = await sign_in_with(client, "acme", standin, ADA)

    assert_problem(response, 502)
    assert await user_count(sessions) == 0


# --- the provider failing --------------------------------------------------------------------


async def test_a_provider_that_hangs_is_unavailable_within_the_timeout(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)
    standin.fail("/token", "hang")

    began = time.monotonic()
    response = await finish(client, "acme", code, state, cookies)

    assert_problem(response, 503)
    assert time.monotonic() - began < HTTP_TIMEOUT_SECONDS + 2


async def test_a_provider_answering_garbage_is_a_bad_gateway(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)
    standin.fail("/token", "garbage")

    assert_problem(await finish(client, "acme", code, state, cookies), 502)
    assert await user_count(sessions) == 0


async def test_a_provider_failing_is_never_a_server_error_here(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, ADA)
    standin.fail("/token", "error")

    assert_problem(await finish(client, "acme", code, state, cookies), 502, 503)


async def test_unreachable_discovery_makes_authorize_unavailable(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    standin.fail("/.well-known/openid-configuration", "hang")

    response = await client.get("/auth/oauth/acme/authorize")

    assert_problem(response, 503)
    assert "set-cookie" not in response.headers


class TestProviderDown:
    """A provider whose server has stopped: the connection is refused at once."""

    @pytest.fixture
    def private_standin(self) -> Iterator[OIDCStandin]:
        standin = OIDCStandin(client_id=CLIENT_ID, client_secret="s3cret").start()
        yield standin
        standin.stop()

    @pytest.fixture
    def settings_overrides(self, private_standin: OIDCStandin) -> dict[str, object]:
        return provider_settings(private_standin)

    async def test_a_stopped_provider_is_unavailable_at_once(
        self, client: httpx.AsyncClient, private_standin: OIDCStandin
    ) -> None:
        authorization_url, cookies = await start(client, "acme")
        code, state = private_standin.approve(authorization_url, ADA)
        private_standin.stop()

        began = time.monotonic()
        response = await finish(client, "acme", code, state, cookies)

        assert_problem(response, 503)
        assert time.monotonic() - began < 1
