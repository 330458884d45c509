"""`auth_time` (RFC 9068 / RFC 9470): every access token says when the session's user last
proved a credential; a refresh keeps it, a new sign-in renews it."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.admins import admin_headers, register_client
from tests.support.flows import basic, refresh, register_and_sign_in, sign_in
from tests.support.state import FrozenClock

pytestmark = pytest.mark.usefixtures("app")


def auth_time_of(tokens: dict[str, Any]) -> int:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    auth_time = claims["auth_time"]
    assert isinstance(auth_time, int)
    return auth_time


async def test_an_access_token_carries_the_time_of_the_sign_in(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    signed_in_at = int(clock.now.timestamp())

    tokens = await register_and_sign_in(client)

    assert auth_time_of(tokens) == signed_in_at


async def test_a_refresh_keeps_auth_time(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    tokens = await register_and_sign_in(client)
    clock.advance(minutes=20)

    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    clock.advance(minutes=20)
    again = await refresh(client, response.json()["refresh_token"])

    assert again.status_code == 200, again.text
    assert auth_time_of(response.json()) == auth_time_of(again.json()) == auth_time_of(tokens)


async def test_a_new_sign_in_renews_auth_time(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await register_and_sign_in(client)
    clock.advance(minutes=20)

    second = await sign_in(client)

    assert auth_time_of(second) == auth_time_of(first) + 20 * 60


async def test_introspection_tells_when_the_user_signed_in(
    client: httpx.AsyncClient, clock: FrozenClock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    caller = basic(*await register_client(client, root, name="api", scopes=["introspect"]))
    tokens = await register_and_sign_in(client, "ada@example.com")
    clock.advance(minutes=5)
    refreshed = (await refresh(client, tokens["refresh_token"])).json()

    for token in (refreshed["access_token"], refreshed["refresh_token"]):
        response = await client.post("/auth/introspect", data={"token": token}, headers=caller)
        assert response.json()["active"] is True, response.text
        assert response.json()["auth_time"] == auth_time_of(tokens)
