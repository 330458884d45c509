"""grant_type=refresh_token: rotation, replay, races and session lifetimes."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import AuditEventRepository, SignInSessionRepository
from tests.support.flows import bearer, refresh, register_and_sign_in
from tests.support.state import FrozenClock, forge_user


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient) -> None:
    first = await register_and_sign_in(client)

    response = await refresh(client, first["refresh_token"])

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    me = await client.get("/users/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200


async def test_replay_within_grace_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    first = await register_and_sign_in(client)
    second = (await refresh(client, first["refresh_token"])).json()

    replay = await refresh(client, first["refresh_token"])

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The legitimate successor still works: a client racing itself is not punished.
    assert (await refresh(client, second["refresh_token"])).status_code == 200
    assert await AuditEventRepository(session).count(type="refresh_token.reused") == 0


async def test_replay_after_grace_revokes_the_whole_family(
    client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock
) -> None:
    first = await register_and_sign_in(client)
    second = (await refresh(client, first["refresh_token"])).json()
    clock.advance(seconds=11)

    replay = await refresh(client, first["refresh_token"])

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert (await refresh(client, second["refresh_token"])).status_code == 400
    me = await client.get("/users/me", headers=bearer(second["access_token"]))
    assert me.status_code == 401
    events = await AuditEventRepository(session).list_by(type="refresh_token.reused")
    assert len(events) == 1
    assert events[0].user_id is not None


async def test_reuse_ends_only_the_affected_session(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    from tests.support.flows import sign_in

    stolen = await register_and_sign_in(client)
    other = await sign_in(client)
    await refresh(client, stolen["refresh_token"])
    clock.advance(seconds=60)

    await refresh(client, stolen["refresh_token"])

    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_concurrent_uses_of_one_refresh_token_let_exactly_one_win(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(client)

    responses = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(8)))

    assert sorted(r.status_code for r in responses) == [200] + [400] * 7


async def test_unknown_refresh_token_is_invalid_grant(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "not-a-token")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.get("/users/me", headers=bearer(tokens["refresh_token"]))

    assert response.status_code == 401


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    assert (await refresh(client, tokens["access_token"])).status_code == 400


async def test_idle_session_expires(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    tokens = await register_and_sign_in(client)
    clock.advance(days=7, seconds=1)

    assert (await refresh(client, tokens["refresh_token"])).status_code == 400


async def test_used_session_outlives_the_idle_timeout_but_not_the_absolute_one(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    statuses = []
    for _ in range(5):  # refreshed every 6 days: never idle for 7, but 30 days pass
        clock.advance(days=6)
        response = await refresh(client, tokens["refresh_token"])
        statuses.append(response.status_code)
        tokens = response.json() if response.status_code == 200 else tokens

    assert statuses == [200, 200, 200, 200, 400]


async def test_deactivated_user_cannot_refresh(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    tokens = await register_and_sign_in(client)
    # Forged: deactivating through the admin use case would end her sessions first.
    await forge_user(session, "ada@example.com", is_active=False)

    assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401


async def test_refresh_updates_the_session_last_use(
    client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    clock.advance(hours=1)

    await refresh(client, tokens["refresh_token"])

    sessions = await SignInSessionRepository(session).list_by()
    assert len(sessions) == 1
    assert sessions[0].last_used_at == clock.now
