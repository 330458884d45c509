"""The client-credentials grant: service clients get their own access tokens."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.repositories import AuditEventRepository
from app.runtime import runtime_of
from tests.support.admins import admin_headers, register_client
from tests.support.flows import basic, bearer

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def root(client: httpx.AsyncClient, sessions: Sessions) -> dict[str, str]:
    return await admin_headers(client, sessions, superuser=True)


async def grant(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **form: str
) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "client_credentials", **form}, headers=headers
    )


def claims_of(app: FastAPI, token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = runtime_of(app).token_codec.decode(token)
    return decoded


async def test_basic_authentication_gets_an_access_token_and_no_refresh_token(
    app: FastAPI, client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    client_id, secret = await register_client(
        client, root, scopes=["users:read", "introspect"], audiences=["billing-api"]
    )

    response = await grant(client, basic(client_id, secret))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["scope"] == "introspect users:read"
    assert "refresh_token" not in body
    claims = claims_of(app, body["access_token"])
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == "introspect users:read"
    assert claims["aud"] == [runtime_of(app).settings.jwt_audience, "billing-api"]
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


async def test_form_authentication_and_a_narrower_scope(
    app: FastAPI, client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    client_id, secret = await register_client(client, root, scopes=["users:read", "audit:read"])

    response = await grant(client, client_id=client_id, client_secret=secret, scope="audit:read")

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "audit:read"
    assert claims_of(app, response.json()["access_token"])["aud"] == "authsvc"


async def test_a_scope_beyond_the_clients_is_invalid_scope(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    client_id, secret = await register_client(client, root, scopes=["users:read"])

    response = await grant(client, basic(client_id, secret), scope="users:read users:write")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert "users:write" in response.json()["error_description"]


async def test_a_deleted_permission_is_no_longer_granted(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    created = await client.post(
        "/admin/permissions", json={"codename": "reports:read"}, headers=root
    )
    assert created.status_code == 201
    client_id, secret = await register_client(client, root, scopes=["reports:read", "users:read"])
    assert (await client.delete("/admin/permissions/reports:read", headers=root)).status_code == 204

    response = await grant(client, basic(client_id, secret))

    assert response.json()["scope"] == "users:read"


async def _register_disabled_and_deleted(
    client: httpx.AsyncClient, root: dict[str, str]
) -> list[tuple[str, str]]:
    disabled = await register_client(client, root, name="disabled")
    patched = await client.patch(
        f"/admin/clients/{disabled[0]}", json={"is_active": False}, headers=root
    )
    assert patched.json()["is_active"] is False
    deleted = await register_client(client, root, name="deleted")
    assert (await client.delete(f"/admin/clients/{deleted[0]}", headers=root)).status_code == 204
    return [disabled, deleted]


async def test_bad_credentials_are_one_indistinguishable_invalid_client(
    client: httpx.AsyncClient, root: dict[str, str], sessions: Sessions
) -> None:
    client_id, secret = await register_client(client, root)
    (
        (disabled_id, disabled_secret),
        (deleted_id, deleted_secret),
    ) = await _register_disabled_and_deleted(client, root)

    attempts = [
        await grant(client, basic(client_id, secret + "x")),
        await grant(client, basic("no-such-client", secret)),
        await grant(client, client_id=client_id, client_secret="wrong"),
        await grant(client, basic(disabled_id, disabled_secret)),
        await grant(client, basic(deleted_id, deleted_secret)),
        await grant(client),  # no credentials at all
        await grant(client, client_id=client_id),  # a public client has no such grant
    ]

    for response in attempts:
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")
    described = {r.json()["error_description"] for r in attempts[:5]}
    assert len(described) == 1  # nothing tells which part was wrong
    async with sessions() as session:
        failures = await AuditEventRepository(session).list_by(type="client.authentication_failed")
    assert len(failures) == 5
    assert secret not in str([f.details for f in failures])


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    ],
)
async def test_malformed_basic_credentials_are_invalid_request(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await grant(client, headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_two_authentication_methods_at_once_are_invalid_request(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    client_id, secret = await register_client(client, root)
    response = await grant(
        client, basic(client_id, secret), client_id=client_id, client_secret=secret
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_client_token_is_not_a_user_token(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    client_id, secret = await register_client(client, root, scopes=["users:read"])
    token = (await grant(client, basic(client_id, secret))).json()["access_token"]

    assert (await client.get("/users/me", headers=bearer(token))).status_code == 401
    assert (await client.post("/auth/logout", headers=bearer(token))).status_code == 401


async def test_a_client_token_uses_the_admin_api_within_its_scopes(
    client: httpx.AsyncClient, root: dict[str, str], sessions: Sessions
) -> None:
    client_id, secret = await register_client(client, root, scopes=["users:read", "users:write"])
    token = (await grant(client, basic(client_id, secret))).json()["access_token"]
    narrow = (await grant(client, basic(client_id, secret), scope="users:read")).json()

    assert (await client.get("/admin/users", headers=bearer(token))).status_code == 200
    assert (await client.get("/admin/roles", headers=bearer(token))).status_code == 403
    created = await client.post(
        "/admin/users", json={"email": "synced@example.com"}, headers=bearer(token)
    )
    assert created.status_code == 201
    refused = await client.post(
        "/admin/users", json={"email": "x@example.com"}, headers=bearer(narrow["access_token"])
    )
    assert refused.status_code == 403  # the token's scope, not the client's, bounds it
    async with sessions() as session:
        event = await AuditEventRepository(session).get_one_by(type="user.created")
    assert event is not None
    assert event.actor_id is None
    assert event.details["via"] == "client"
    assert event.details["actor_client_id"] == client_id

    # Taking a scope from the client, or disabling it, applies to tokens already issued.
    await client.patch(f"/admin/clients/{client_id}", json={"scopes": []}, headers=root)
    assert (await client.get("/admin/users", headers=bearer(token))).status_code == 403
    await client.patch(
        f"/admin/clients/{client_id}",
        json={"scopes": ["users:read"], "is_active": False},
        headers=root,
    )
    assert (await client.get("/admin/users", headers=bearer(token))).status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_login_ip": "3/minute"}])
async def test_guessing_secrets_is_throttled_per_ip(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    client_id, secret = await register_client(client, root)
    for _ in range(3):
        assert (await grant(client, basic(client_id, "guess"))).status_code == 401

    throttled = await grant(client, basic(client_id, secret))

    assert throttled.status_code == 429
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert int(throttled.headers["retry-after"]) > 0


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_fetches_a_client_credentials_token(
    app: FastAPI, client: httpx.AsyncClient, root: dict[str, str], method: str
) -> None:
    client_id, secret = await register_client(client, root, scopes=["users:read"])

    async with AsyncOAuth2Client(
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
        scope="users:read",
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
    ) as oauth:
        token = await oauth.fetch_token(
            "http://testserver/auth/token", grant_type="client_credentials"
        )
        assert token["scope"] == "users:read"
        assert claims_of(app, token["access_token"])["sub"] == client_id

    async with AsyncOAuth2Client(
        client_id=client_id,
        client_secret="wrong",
        token_endpoint_auth_method=method,
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
    ) as oauth:
        with pytest.raises(OAuthError) as refused:
            await oauth.fetch_token("http://testserver/auth/token", grant_type="client_credentials")
        assert refused.value.error == "invalid_client"
