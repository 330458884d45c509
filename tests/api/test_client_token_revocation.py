"""RFC 7009 revocation of a service client's own access token (client-credentials grant): it
has no session to end, so the service remembers it as revoked until it expires."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.runtime import runtime_of
from tests.support.admins import audit_events, register_client
from tests.support.flows import basic, bearer, introspect
from tests.support.state import FrozenClock

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def worker(client: httpx.AsyncClient, root: dict[str, str]) -> dict[str, str]:
    """The Basic credentials of a client that reads users with its own tokens."""
    return basic(*await register_client(client, root, name="worker", scopes=["users:read"]))


async def client_token(client: httpx.AsyncClient, credentials: dict[str, str]) -> str:
    response = await client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers=credentials
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def revoke(
    client: httpx.AsyncClient, token: str, credentials: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post("/auth/revoke", data={"token": token}, headers=credentials or {})


async def denied_jtis(sessions: Sessions) -> list[str]:
    """The `jti`s the service keeps as revoked."""
    async with sessions() as session:
        rows = await session.scalars(text("SELECT jti FROM revoked_access_tokens"))
        return list(rows.all())


async def test_a_revoked_client_token_is_inactive_for_introspection_and_the_admin_api(
    client: httpx.AsyncClient,
    resource_server: dict[str, str],
    worker: dict[str, str],
    sessions: Sessions,
) -> None:
    token = await client_token(client, worker)
    assert (await client.get("/admin/users", headers=bearer(token))).status_code == 200
    # Nobody but the client itself revokes its token: anonymous callers and other clients
    # get the same 200, and nothing happens.
    assert (await revoke(client, token)).status_code == 200
    assert (await revoke(client, token, resource_server)).status_code == 200
    assert (await introspect(client, resource_server, token))["active"] is True

    response = await revoke(client, token, worker)

    assert response.status_code == 200
    assert await introspect(client, resource_server, token) == {"active": False}
    listed = await client.get("/admin/users", headers=bearer(token))
    assert listed.status_code == 401
    # Only that token: the client's next one works.
    fresh = await client_token(client, worker)
    assert (await client.get("/admin/users", headers=bearer(fresh))).status_code == 200
    [event] = await audit_events(sessions, "token.revoked")
    assert event.details["token_type"] == "access_token"


async def test_fifty_parallel_revocations_and_introspections_of_one_token_agree(
    client: httpx.AsyncClient,
    resource_server: dict[str, str],
    worker: dict[str, str],
    sessions: Sessions,
) -> None:
    token = await client_token(client, worker)

    results = await asyncio.gather(
        *(revoke(client, token, worker) for _ in range(25)),
        *(introspect(client, resource_server, token) for _ in range(25)),
    )

    revocations: list[httpx.Response] = results[:25]  # type: ignore[assignment]
    answers: list[dict[str, Any]] = results[25:]  # type: ignore[assignment]
    assert {response.status_code for response in revocations} == {200}
    # Each answer is whole: active with its claims, or inactive with nothing else.
    for answer in answers:
        assert answer == {"active": False} or answer["sub"] == answer["client_id"]
    assert await introspect(client, resource_server, token) == {"active": False}
    assert len(await denied_jtis(sessions)) == 1
    assert len(await audit_events(sessions, "token.revoked")) == 1


async def test_revoked_tokens_are_forgotten_once_they_would_have_expired(
    app: FastAPI,
    client: httpx.AsyncClient,
    worker: dict[str, str],
    sessions: Sessions,
    clock: FrozenClock,
) -> None:
    first = await client_token(client, worker)
    assert (await revoke(client, first, worker)).status_code == 200
    assert len(await denied_jtis(sessions)) == 1
    clock.advance(seconds=901)  # past the first token's 15 minutes

    second = await client_token(client, worker)
    assert (await revoke(client, second, worker)).status_code == 200

    assert await denied_jtis(sessions) == [runtime_of(app).token_codec.decode(second)["jti"]]
