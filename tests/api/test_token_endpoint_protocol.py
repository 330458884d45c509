"""Token endpoint details that unmodified client libraries trip on: repeated parameters, the
`scope` of the token response, and access tokens that RFC 9068 validators accept."""

from __future__ import annotations

import time
import warnings
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.runtime import runtime_of
from app.security.access_tokens import AccessTokenCodec
from tests.support.admins import admin_headers, register_client
from tests.support.flows import PASSWORD, basic, bearer, password_grant, refresh, register

pytestmark = pytest.mark.usefixtures("app")


class _Validator(JWTBearerTokenValidator):  # type: ignore[misc]
    """Authlib's RFC 9068 resource-server check, trusting this service's published keys."""

    def __init__(self, settings: Settings, jwks: dict[str, Any]) -> None:
        super().__init__(issuer=settings.issuer, resource_server=settings.jwt_audience)
        self.jwks = jwks

    def get_jwks(self) -> dict[str, Any]:
        return self.jwks


async def accepted_by_authlib(client: httpx.AsyncClient, settings: Settings, token: str) -> bool:
    validator = _Validator(settings, (await client.get("/.well-known/jwks.json")).json())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Authlib's own deprecation notes about joserfc
        try:
            claims = validator.authenticate_token(token)
            validator.validate_token(claims, scopes=None, request=None)
        except InvalidTokenError:
            return False
    return True


@pytest.mark.parametrize(
    "form",
    [
        "grant_type=password&username=mallory&username=ada%40example.com&password=PW",
        "grant_type=refresh_token&grant_type=password&username=ada%40example.com&password=PW",
        "grant_type=password&username=ada%40example.com&password=x&password=PW",
    ],
)
async def test_a_repeated_parameter_on_the_token_endpoint_is_invalid_request(
    client: httpx.AsyncClient, form: str
) -> None:
    await register(client, "ada@example.com")
    body = form.replace("PW", PASSWORD.replace(" ", "+"))

    response = await client.post(
        "/auth/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert "access_token" not in response.text


async def test_revoke_refuses_a_repeated_token_and_ignores_repeated_unknown_parameters(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")
    tokens = (await password_grant(client, "ada@example.com")).json()

    response = await client.post(
        "/auth/revoke", data={"token": ["not-a-token", tokens["refresh_token"]]}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    refreshed = await refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200  # nothing was revoked
    # RFC 6749 section 3.2: parameters the endpoint does not define are ignored, even repeated.
    unknown = await client.post(
        "/auth/revoke",
        data={"token": refreshed.json()["refresh_token"], "utm_source": ["a", "b"]},
    )
    assert unknown.status_code == 200
    assert (await refresh(client, refreshed.json()["refresh_token"])).status_code == 400


async def test_a_repeated_token_on_introspect_is_invalid_request(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    api = basic(*await register_client(client, root, name="api", scopes=["introspect"]))

    response = await client.post("/auth/introspect", data={"token": ["a", "b"]}, headers=api)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_scope_narrowed_to_nothing_is_reported_in_the_token_response(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")

    narrowed = await password_grant(client, "ada@example.com", scope="users:read")
    unasked = await password_grant(client, "ada@example.com")

    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == ""  # asked for users:read, holds none of it
    # Neither requested nor granted: nothing to report (RFC 6749 section 5.1).
    assert unasked.status_code == 200
    assert "scope" not in unasked.json()


async def test_a_refresh_always_reports_the_scope_the_new_token_holds(
    client: httpx.AsyncClient,
) -> None:
    """A refresh implicitly asks for the scope first granted; an absent `scope` would tell the
    client it holds what it once asked for."""
    await register(client, "ada@example.com")
    tokens = (await password_grant(client, "ada@example.com", scope="users:read")).json()

    refreshed = await refresh(client, tokens["refresh_token"])

    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == ""


async def test_a_plain_users_access_token_passes_authlibs_rfc9068_validator(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    app: FastAPI,
) -> None:
    await register(client, "ada@example.com")
    plain = (await password_grant(client, "ada@example.com")).json()["access_token"]
    await admin_headers(client, sessions, "root@example.com", roles=["admin"])
    admin = (await password_grant(client, "root@example.com", scope="users:read")).json()
    codec: AccessTokenCodec = runtime_of(app).token_codec
    expired = AccessTokenCodec(
        codec.keys,
        issuer=codec.issuer,
        audience=codec.audience,
        ttl_seconds=60,
        clock=lambda: time.time() - 3600,
    ).encode({name: codec.decode(plain)[name] for name in ("sub", "client_id", "sid", "ver")})

    assert await accepted_by_authlib(client, settings, plain)
    assert (await client.get("/users/me", headers=bearer(plain))).status_code == 200
    assert await accepted_by_authlib(client, settings, admin["access_token"])  # roles, scope
    assert not await accepted_by_authlib(client, settings, expired)  # the check is a real one
