"""What a refused request tells the client: RFC 6750 challenges on 401 and 403, and an `Allow`
header on 405 that lists every method the path serves."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.admins import admin_headers
from tests.support.flows import bearer, register_and_sign_in

pytestmark = pytest.mark.usefixtures("app")


@pytest.mark.parametrize("token", ["not.a.token", "eyJhbGciOiJub25lIn0.e30."])
async def test_a_rejected_token_gets_an_invalid_token_challenge(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.get("/users/me", headers=bearer(token))
    without_token = await client.get("/users/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # No token at all: the bare challenge, the client should sign in.
    assert without_token.status_code == 401
    assert without_token.headers["www-authenticate"] == "Bearer"


async def test_a_token_of_an_ended_session_gets_an_invalid_token_challenge(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(client)
    assert (await client.post("/auth/logout", headers=bearer(tokens["access_token"]))).is_success

    response = await client.get("/users/me", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_an_admin_route_names_the_missing_permission_as_insufficient_scope(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    plain = bearer((await register_and_sign_in(client, "plain@example.com"))["access_token"])
    reader = await admin_headers(client, sessions, "reader@example.com", permissions=["roles:read"])

    for headers in (plain, reader):
        response = await client.get("/admin/users", headers=headers)

        assert response.status_code == 403
        assert response.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="users:read"'
        )


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/users/me", "GET, PATCH"),
        ("PUT", "/users/me", "GET, PATCH"),
        ("PUT", "/admin/roles", "GET, POST"),
        ("POST", "/docs/assets/swagger-ui.css", "GET, HEAD"),
    ],
)
async def test_method_not_allowed_lists_every_method_the_path_serves(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"
