"""Logout, logout-all and RFC 7009 revocation."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import AuditEventRepository
from tests.support.flows import bearer, refresh, register_and_sign_in, sign_in

pytestmark = pytest.mark.usefixtures("app")


async def me_status(client: httpx.AsyncClient, access_token: str) -> int:
    return (await client.get("/users/me", headers=bearer(access_token))).status_code


async def test_logout_ends_the_current_session_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    current = await register_and_sign_in(client)
    other = await sign_in(client)

    response = await client.post("/auth/logout", headers=bearer(current["access_token"]))

    assert response.status_code == 204
    assert await me_status(client, current["access_token"]) == 401
    assert (await refresh(client, current["refresh_token"])).status_code == 400
    assert await me_status(client, other["access_token"]) == 200
    assert await AuditEventRepository(session).count(type="logout") == 1


async def test_logout_needs_a_valid_access_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/logout")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_logout_all_kills_every_session_and_access_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    first = await register_and_sign_in(client)
    second = await sign_in(client)

    response = await client.post("/auth/logout-all", headers=bearer(first["access_token"]))

    assert response.status_code == 204
    for tokens in (first, second):
        assert await me_status(client, tokens["access_token"]) == 401
        assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    assert await AuditEventRepository(session).count(type="logout.all") == 1
    # Signing in again works, with the bumped token version.
    assert await me_status(client, (await sign_in(client))["access_token"]) == 200


async def test_revoking_a_refresh_token_ends_its_session(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.post(
        "/auth/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    assert await me_status(client, tokens["access_token"]) == 401


async def test_revoking_an_access_token_ends_its_session(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.post("/auth/revoke", data={"token": tokens["access_token"]})

    assert response.status_code == 200
    assert await me_status(client, tokens["access_token"]) == 401
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400


async def test_revoking_with_a_wrong_hint_still_works(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    await client.post(
        "/auth/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "access_token"}
    )

    assert (await refresh(client, tokens["refresh_token"])).status_code == 400


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 2000])
async def test_revoking_an_unknown_token_is_200(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/auth/revoke", data={"token": token})
    assert response.status_code == 200


async def test_revoke_without_token_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/revoke", data={})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
