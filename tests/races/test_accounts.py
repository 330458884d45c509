"""Accounts and tokens under parallel requests: one winner, nothing half-written."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.races.conftest import PARALLEL, burst, no_orphans, rows, scalar, statuses
from tests.support.flows import PASSWORD, bearer, refresh, register, sign_in


async def test_parallel_registrations_of_one_email_create_one_account(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # The same address in different cases: the service compares emails case-insensitively.
    emails = [("Race" if n % 2 else "race") + "@Example.com" for n in range(PARALLEL)]

    responses = await burst(
        (
            lambda email=email: http.post(
                "/auth/register", json={"email": email, "password": PASSWORD}
            )
        )
        for email in emails
    )

    assert statuses(responses) == [201] + [409] * (PARALLEL - 1)
    [created] = [r for r in responses if r.status_code == 201]
    assert created.json()["email"] == "race@example.com"
    assert await rows(engine, "SELECT id FROM users") == [
        (await scalar(engine, "SELECT id FROM users WHERE email = 'race@example.com'"),)
    ]
    registered = await scalar(
        engine, "SELECT count(*) FROM audit_events WHERE type = 'user.registered'"
    )
    assert registered == 1
    await no_orphans(engine)
    # The account that won works.
    await sign_in(http, "race@example.com", PASSWORD)


async def test_parallel_refreshes_of_one_token_let_exactly_one_win(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(http, "ada@example.com")
    tokens = await sign_in(http, "ada@example.com", PASSWORD)

    responses = await burst(
        (lambda: refresh(http, tokens["refresh_token"])) for _ in range(PARALLEL)
    )

    assert statuses(responses) == [200] + [400] * (PARALLEL - 1)
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    [winner] = [r.json() for r in responses if r.status_code == 200]
    # One session, its first token spent, exactly one live successor: the winner's.
    [(session_id, revoked_at)] = await rows(engine, "SELECT id, revoked_at FROM sessions")
    assert revoked_at is None, "losers inside the reuse grace period must not end the session"
    tokens_of_session = await rows(
        engine,
        "SELECT spent_at IS NULL FROM refresh_tokens WHERE session_id = :session_id",
        session_id=session_id,
    )
    assert sorted(live for (live,) in tokens_of_session) == [False, True]
    assert (await http.get("/users/me", headers=bearer(winner["access_token"]))).status_code == 200
    assert (await refresh(http, winner["refresh_token"])).status_code == 200
    await no_orphans(engine)


async def test_logout_all_racing_refreshes_leaves_no_working_token(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(http, "ada@example.com")
    signed_in = [await sign_in(http, "ada@example.com", PASSWORD) for _ in range(4)]
    first = signed_in[0]

    calls = [lambda: http.post("/auth/logout-all", headers=bearer(first["access_token"]))]
    calls += [(lambda t=t: refresh(http, t["refresh_token"])) for t in signed_in for _ in range(3)]
    responses = await burst(calls)

    assert responses[0].status_code == 204
    refreshed = [r.json() for r in responses[1:] if r.status_code == 200]
    access_tokens = [t["access_token"] for t in [*signed_in, *refreshed]]
    refresh_tokens = [t["refresh_token"] for t in [*signed_in, *refreshed]]
    # Whatever order the race took, after logout-all nothing of before still works.
    for access_token in access_tokens:
        me = await http.get("/users/me", headers=bearer(access_token))
        assert me.status_code == 401, me.text
    for refresh_token in refresh_tokens:
        assert (await refresh(http, refresh_token)).status_code == 400
    live_sessions = await scalar(engine, "SELECT count(*) FROM sessions WHERE revoked_at IS NULL")
    assert live_sessions == 0
    await no_orphans(engine)


async def test_parallel_password_changes_let_exactly_one_win(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(http, "ada@example.com")
    tokens = await sign_in(http, "ada@example.com", PASSWORD)
    candidates = [f"a new passphrase number {n} for ada" for n in range(6)]

    responses = await burst(
        (
            lambda new=new: http.post(
                "/users/me/password",
                headers=bearer(tokens["access_token"]),
                json={"current_password": PASSWORD, "new_password": new},
            )
        )
        for new in candidates
    )

    # One change wins; the others fail as if they had come after it: their current password
    # or their token is no longer valid. No one is told "changed" while another change stuck.
    [changed] = [c for c, r in zip(candidates, responses, strict=True) if r.status_code == 204]
    assert {r.status_code for r in responses} <= {204, 400, 401}, statuses(responses)
    working = []
    for password in [PASSWORD, *candidates]:
        grant = await http.post(
            "/auth/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": password},
        )
        assert grant.status_code in (200, 400), grant.text
        if grant.status_code == 200:
            working.append(password)
    assert working == [changed]
    assert (await http.get("/users/me", headers=bearer(tokens["access_token"]))).status_code == 401
    await no_orphans(engine)
