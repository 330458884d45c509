"""Replays of a spent refresh token after the grace window, in parallel: the family ends,
whatever order the replays take, and other sessions are untouched."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.races.conftest import PARALLEL, burst, no_orphans, rows, scalar
from tests.support.flows import bearer, refresh, register, sign_in


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # No grace: any replay of a spent token is a theft signal at once.
    return {"rate_limit_enabled": False, "refresh_reuse_grace_seconds": 0}


async def test_parallel_replays_of_a_spent_token_end_its_session_only(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(http, "ada@example.com")
    stolen = await sign_in(http, "ada@example.com")
    bystander = await sign_in(http, "ada@example.com")
    rotated = (await refresh(http, stolen["refresh_token"])).json()

    responses = await burst(
        (lambda: refresh(http, stolen["refresh_token"])) for _ in range(PARALLEL)
    )

    assert [r.status_code for r in responses] == [400] * PARALLEL
    assert {r.json()["error"] for r in responses} == {"invalid_grant"}
    ended = await rows(engine, "SELECT revoke_reason FROM sessions WHERE revoked_at IS NOT NULL")
    assert ended == [("refresh_token_reuse",)]
    reused = await scalar(
        engine, "SELECT count(*) FROM audit_events WHERE type = 'refresh_token.reused'"
    )
    assert reused == PARALLEL
    # The thief's successor is dead; the other session of the same user is not.
    assert (await refresh(http, rotated["refresh_token"])).status_code == 400
    assert (await http.get("/users/me", headers=bearer(rotated["access_token"]))).status_code == 401
    assert (
        await http.get("/users/me", headers=bearer(bystander["access_token"]))
    ).status_code == 200
    assert (await refresh(http, bystander["refresh_token"])).status_code == 200
    await no_orphans(engine)
