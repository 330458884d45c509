"""RFC 7662 introspection: active only while a token is valid right now, for authorised
clients only."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.runtime import runtime_of
from app.security.access_tokens import AccessTokenCodec
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SigningKey
from tests.support.admins import register_client
from tests.support.flows import PASSWORD, basic, bearer, introspect, refresh, register_and_sign_in

Sessions = async_sessionmaker[AsyncSession]
NEW_PASSWORD = "a completely different passphrase"


async def test_an_active_user_access_token(
    app: FastAPI, client: httpx.AsyncClient, resource_server: dict[str, str]
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com", username="ada")

    answer = await introspect(client, resource_server, tokens["access_token"])

    claims = runtime_of(app).token_codec.decode(tokens["access_token"])
    assert answer == {
        "active": True,
        "sub": claims["sub"],
        "client_id": claims["client_id"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": claims["iss"],
        "aud": claims["aud"],
        "jti": claims["jti"],
        "auth_time": claims["auth_time"],
        "acr": "aal1",
        "amr": ["pwd"],
        "token_type": "Bearer",
        "username": "ada",
        "email": "ada@example.com",
        "roles": [],
    }


async def test_an_active_refresh_token_and_a_spent_one(
    client: httpx.AsyncClient, resource_server: dict[str, str]
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")

    answer = await introspect(client, resource_server, tokens["refresh_token"])
    assert answer["active"] is True
    assert answer["token_type"] == "refresh_token"
    assert answer["email"] == "ada@example.com"
    assert answer["exp"] > time.time()

    await refresh(client, tokens["refresh_token"])
    assert await introspect(client, resource_server, tokens["refresh_token"]) == {"active": False}


async def test_a_client_token_is_active_until_its_client_is_disabled_or_deleted(
    client: httpx.AsyncClient, root: dict[str, str], resource_server: dict[str, str]
) -> None:
    client_id, secret = await register_client(client, root, name="worker", scopes=["users:read"])

    async def client_token() -> str:
        response = await client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, secret),
        )
        return str(response.json()["access_token"])

    token = await client_token()
    answer = await introspect(client, resource_server, token)
    assert answer["active"] is True
    assert answer["sub"] == answer["client_id"] == client_id
    assert answer["scope"] == "users:read"
    assert "username" not in answer

    await client.patch(f"/admin/clients/{client_id}", json={"is_active": False}, headers=root)
    assert await introspect(client, resource_server, token) == {"active": False}
    await client.patch(f"/admin/clients/{client_id}", json={"is_active": True}, headers=root)
    assert (await introspect(client, resource_server, token))["active"] is True
    await client.delete(f"/admin/clients/{client_id}", headers=root)
    assert await introspect(client, resource_server, token) == {"active": False}


def _codec_like(app: FastAPI, **changes: Any) -> AccessTokenCodec:
    codec: AccessTokenCodec = runtime_of(app).token_codec
    values: dict[str, Any] = {
        "keys": codec.keys,
        "issuer": codec.issuer,
        "audience": codec.audience,
        "ttl_seconds": codec.ttl_seconds,
        **changes,
    }
    return AccessTokenCodec(values.pop("keys"), clock=values.pop("clock", time.time), **values)


async def test_tokens_that_were_never_valid_here_are_inactive(
    app: FastAPI, client: httpx.AsyncClient, resource_server: dict[str, str]
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")
    claims = runtime_of(app).token_codec.decode(tokens["access_token"])
    own = {k: claims[k] for k in ("sub", "sid", "ver", "client_id")}
    stranger = KeyRing(SigningKey.generate("RS256"))
    header, payload, signature = tokens["access_token"].split(".")

    for token in (
        _codec_like(app, clock=lambda: time.time() - 3600).encode(own),  # expired
        _codec_like(app, keys=stranger).encode(own),  # signed by someone else's key
        _codec_like(app, issuer="https://evil.example").encode(own),
        _codec_like(app, audience="another-service").encode(own),
        f"{header}.{payload}.{signature[:-4]}AAAA",  # signature tampered with
        "not a token at all",
        "x" * 10_000,
    ):
        assert await introspect(client, resource_server, token) == {"active": False}


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "nonsense"])
async def test_the_hint_never_changes_the_answer(
    client: httpx.AsyncClient, resource_server: dict[str, str], hint: str
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")
    for token, token_type in (
        (tokens["access_token"], "Bearer"),
        (tokens["refresh_token"], "refresh_token"),
    ):
        answer = await introspect(client, resource_server, token, token_type_hint=hint)
        assert answer["token_type"] == token_type


async def _logout(client: httpx.AsyncClient, tokens: dict[str, Any], **_: Any) -> None:
    assert (
        await client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    ).status_code == 204


async def _logout_all(client: httpx.AsyncClient, tokens: dict[str, Any], **_: Any) -> None:
    other = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
    )
    assert (
        await client.post("/auth/logout-all", headers=bearer(other.json()["access_token"]))
    ).status_code == 204


async def _revoke(client: httpx.AsyncClient, tokens: dict[str, Any], **_: Any) -> None:
    assert (
        await client.post("/auth/revoke", data={"token": tokens["refresh_token"]})
    ).status_code == 200


async def _change_password(client: httpx.AsyncClient, tokens: dict[str, Any], **_: Any) -> None:
    other = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
    )
    changed = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(other.json()["access_token"]),
    )
    assert changed.status_code == 204


async def _deactivate(
    client: httpx.AsyncClient, tokens: dict[str, Any], root: dict[str, str], user_id: str
) -> None:
    assert (
        await client.patch(f"/admin/users/{user_id}", json={"is_active": False}, headers=root)
    ).status_code == 200


async def _delete(
    client: httpx.AsyncClient, tokens: dict[str, Any], root: dict[str, str], user_id: str
) -> None:
    assert (await client.delete(f"/admin/users/{user_id}", headers=root)).status_code == 204


async def _end_sessions(
    client: httpx.AsyncClient, tokens: dict[str, Any], root: dict[str, str], user_id: str
) -> None:
    assert (
        await client.delete(f"/admin/users/{user_id}/sessions", headers=root)
    ).status_code == 204


@pytest.mark.parametrize(
    "end", [_logout, _logout_all, _revoke, _change_password, _deactivate, _delete, _end_sessions]
)
async def test_tokens_turn_inactive_when_their_session_or_user_ends(
    client: httpx.AsyncClient, root: dict[str, str], resource_server: dict[str, str], end: Any
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")
    user_id = (await client.get("/users/me", headers=bearer(tokens["access_token"]))).json()["id"]
    assert (await introspect(client, resource_server, tokens["access_token"]))["active"] is True

    await end(client, tokens, root=root, user_id=user_id)

    assert await introspect(client, resource_server, tokens["access_token"]) == {"active": False}
    assert await introspect(client, resource_server, tokens["refresh_token"]) == {"active": False}


async def test_only_authenticated_clients_with_the_introspect_scope_may_ask(
    client: httpx.AsyncClient, root: dict[str, str], resource_server: dict[str, str]
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")
    plain_id, plain_secret = await register_client(
        client, root, name="plain", scopes=["users:read"]
    )
    form = {"token": tokens["access_token"]}

    anonymous = await client.post("/auth/introspect", data=form)
    as_user = await client.post(
        "/auth/introspect", data=form, headers=bearer(tokens["access_token"])
    )
    wrong_secret = await client.post(
        "/auth/introspect", data=form, headers=basic(plain_id, "not the secret")
    )
    for response in (anonymous, as_user, wrong_secret):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    no_scope = await client.post(
        "/auth/introspect", data=form, headers=basic(plain_id, plain_secret)
    )
    assert no_scope.status_code == 403
    assert no_scope.json()["error"] == "insufficient_scope"

    missing = await client.post("/auth/introspect", data={}, headers=resource_server)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    posted = await client.post(
        "/auth/introspect",
        data={**form, "client_id": plain_id, "client_secret": plain_secret},
    )
    assert posted.status_code == 403  # client_secret_post authenticates too
