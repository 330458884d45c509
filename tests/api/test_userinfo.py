"""OpenID Connect userinfo (OIDC Core 5.3): the signed-in user's claims as the access token's
scopes allow, read from the account as it is now; RFC 6750 challenges otherwise."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from tests.support.admins import register_client
from tests.support.flows import PASSWORD, assert_problem, basic, bearer, password_grant, register

pytestmark = pytest.mark.usefixtures("app")


async def sign_in(client: httpx.AsyncClient, scope: str) -> dict[str, Any]:
    response = await password_grant(client, "ada@example.com", scope=scope)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def userinfo(
    client: httpx.AsyncClient, access_token: str, method: str = "GET"
) -> httpx.Response:
    return await client.request(method, "/oauth/userinfo", headers=bearer(access_token))


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_userinfo_answers_the_claims_the_scopes_allow_with_the_id_tokens_sub(
    client: httpx.AsyncClient, method: str
) -> None:
    await register(client, "ada@example.com", username="ada", full_name="Ada Lovelace")
    tokens = await sign_in(client, "openid profile email")

    response = await userinfo(client, tokens["access_token"], method)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    id_token = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert response.json() == {
        "sub": id_token["sub"],
        "email": "ada@example.com",
        "email_verified": False,
        "name": "Ada Lovelace",
        "preferred_username": "ada",
    }


@pytest.mark.parametrize(
    ("scope", "claims"),
    [
        ("openid", set()),
        ("openid email", {"email", "email_verified"}),
        ("openid profile", {"name", "preferred_username"}),
    ],
)
async def test_the_scope_decides_the_claims(
    client: httpx.AsyncClient, scope: str, claims: set[str]
) -> None:
    await register(client, "ada@example.com", username="ada", full_name="Ada Lovelace")
    tokens = await sign_in(client, scope)

    response = await userinfo(client, tokens["access_token"])

    assert set(response.json()) == {"sub", *claims}


async def test_a_token_without_openid_is_insufficient_scope(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    tokens = await sign_in(client, "profile email")

    response = await userinfo(client, tokens["access_token"])

    assert_problem(response, 403)
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="openid"'
    )


async def test_userinfo_reads_the_account_as_it_is_now(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    tokens = await sign_in(client, "openid email")
    changed = await client.patch(
        "/users/me",
        json={"email": "lovelace@example.com", "current_password": PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    assert changed.status_code == 200, changed.text

    response = await userinfo(client, tokens["access_token"])

    assert response.json()["email"] == "lovelace@example.com"
    assert response.json()["email_verified"] is False


@pytest.mark.parametrize("ending", ["/auth/logout", "/auth/logout-all"])
async def test_an_ended_session_is_invalid_token(client: httpx.AsyncClient, ending: str) -> None:
    await register(client, "ada@example.com")
    tokens = await sign_in(client, "openid")
    ended = await client.post(ending, headers=bearer(tokens["access_token"]))
    assert ended.status_code == 204, ended.text

    response = await userinfo(client, tokens["access_token"], "POST")

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_without_a_token_the_challenge_is_bare_bearer(client: httpx.AsyncClient) -> None:
    response = await client.get("/oauth/userinfo")

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_service_clients_own_token_has_no_user_to_describe(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    credentials = await register_client(client, root, scopes=["introspect"])
    token = await client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers=basic(*credentials)
    )
    assert token.status_code == 200, token.text

    response = await userinfo(client, token.json()["access_token"])

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
