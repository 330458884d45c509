"""Account use cases racing each other on the live server: one winner, nothing half-written,
and nothing issued before a change survives it."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import ActionPurpose, ActionToken, AuditEvent, User, UserSession
from tests.races.conftest import (
    PARALLEL,
    burst,
    issue_link,
    no_orphans,
    rows,
    scalar,
    statuses,
)
from tests.support.flows import (
    PASSWORD,
    assert_problem,
    bearer,
    password_grant,
    refresh,
    register,
    sign_in,
)


async def audit_user_ids(engine: AsyncEngine, event_type: str) -> list[uuid.UUID | None]:
    async with engine.connect() as connection:
        statement = select(AuditEvent.user_id).where(AuditEvent.type == event_type)
        return list(await connection.scalars(statement))


async def live_sessions_of(engine: AsyncEngine, user_id: str) -> int:
    statement = select(func.count()).where(
        UserSession.user_id == uuid.UUID(user_id), UserSession.revoked_at.is_(None)
    )
    async with engine.connect() as connection:
        return int(await connection.scalar(statement) or 0)


async def assert_dead(http: httpx.AsyncClient, tokens: list[dict[str, Any]]) -> None:
    """None of these token pairs works any more: access refused, refresh refused."""
    for pair in tokens:
        me = await http.get("/users/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 401, me.text
        again = await refresh(http, pair["refresh_token"])
        assert again.status_code == 400, again.text
        assert again.json()["error"] == "invalid_grant"


async def test_parallel_registrations_of_one_username_create_one_account(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # Distinct emails, one username in two spellings: the service lower-cases usernames.
    bodies = [
        {
            "email": f"user{n}@example.com",
            "password": PASSWORD,
            "username": "Ada" if n % 2 else "ada",
        }
        for n in range(PARALLEL)
    ]

    responses = await burst(partial(http.post, "/auth/register", json=body) for body in bodies)

    assert statuses(responses) == [201] + [409] * (PARALLEL - 1)
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    [created] = [r.json() for r in responses if r.status_code == 201]
    assert await rows(engine, "SELECT email, username FROM users") == [(created["email"], "ada")]
    # The losers' transactions left nothing behind: one event, about the account that exists.
    assert await scalar(engine, "SELECT count(*) FROM audit_events") == 1
    assert await audit_user_ids(engine, "user.registered") == [uuid.UUID(created["id"])]
    await no_orphans(engine)


async def test_one_address_claimed_by_email_changes_and_registrations_at_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    owners = [await register(http, f"owner{n}@example.com") for n in range(3)]
    headers = [bearer((await sign_in(http, o["email"]))["access_token"]) for o in owners]
    contested = "Wanted@Example.com"

    change = {"email": contested, "current_password": PASSWORD}
    calls = [partial(http.patch, "/users/me", headers=h, json=change) for h in headers]
    sign_up = {"email": contested, "password": PASSWORD}
    calls += [partial(http.post, "/auth/register", json=sign_up)] * (PARALLEL - len(calls))
    responses = await burst(calls)

    won = [r for r in responses if r.status_code in (200, 201)]
    assert len(won) == 1, statuses(responses)
    for response in responses:
        if response is not won[0]:
            assert_problem(response, 409)
    winner = won[0].json()
    assert winner["email"] == "wanted@example.com"
    # Exactly one account holds the address; the owners who lost kept theirs.
    moved = {o["email"] for o in owners if o["id"] == winner["id"]}  # empty: a sign-up won
    expected = sorted({o["email"] for o in owners} - moved | {"wanted@example.com"})
    assert sorted(email for (email,) in await rows(engine, "SELECT email FROM users")) == expected
    await no_orphans(engine)


async def test_parallel_refreshes_of_different_sessions_all_succeed(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(http, "ada@example.com")
    signed_in = [await sign_in(http, "ada@example.com") for _ in range(PARALLEL // 2)]

    responses = await burst(partial(refresh, http, t["refresh_token"]) for t in signed_in)

    assert statuses(responses) == [200] * len(signed_in)
    # One user's sessions do not contend: each family spent one token and holds one live one.
    per_session = await rows(
        engine,
        "SELECT count(*), sum(CASE WHEN spent_at IS NULL THEN 1 ELSE 0 END) "
        "FROM refresh_tokens GROUP BY session_id",
    )
    assert per_session == [(2, 1)] * len(signed_in)
    assert await scalar(engine, "SELECT count(*) FROM sessions WHERE revoked_at IS NULL") == len(
        signed_in
    )
    for response in responses:
        pair = response.json()
        assert (
            await http.get("/users/me", headers=bearer(pair["access_token"]))
        ).status_code == 200
        assert (await refresh(http, pair["refresh_token"])).status_code == 200


async def test_one_verification_link_redeemed_in_parallel_verifies_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(http, "ada@example.com")
    link = await issue_link(engine, "ada@example.com", ActionPurpose.verify_email)

    responses = await burst(
        (lambda: http.post("/auth/verify", json={"token": link})) for _ in range(PARALLEL)
    )

    assert statuses(responses) == [200] + [400] * (PARALLEL - 1)
    for response in responses:
        if response.status_code == 400:
            assert_problem(response, 400)
    assert await scalar(engine, "SELECT is_verified FROM users") in (True, 1)
    async with engine.connect() as connection:
        used = await connection.scalar(select(func.count()).where(ActionToken.used_at.is_not(None)))
    assert used == 1
    assert len(await audit_user_ids(engine, "email.verified")) == 1


async def test_one_reset_link_redeemed_in_parallel_sets_one_password(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(http, "ada@example.com")
    before = await sign_in(http, "ada@example.com")
    link = await issue_link(engine, "ada@example.com", ActionPurpose.reset_password)
    candidates = [f"a brand new passphrase number {n} for her" for n in range(PARALLEL // 2)]

    responses = await burst(
        partial(http.post, "/auth/password/reset", json={"token": link, "new_password": new})
        for new in candidates
    )

    assert statuses(responses) == [204] + [400] * (len(candidates) - 1)
    [winner] = [c for c, r in zip(candidates, responses, strict=True) if r.status_code == 204]
    working = [
        password
        for password in [PASSWORD, *candidates]
        if (await password_grant(http, "ada@example.com", password)).status_code == 200
    ]
    assert working == [winner]
    assert len(await audit_user_ids(engine, "password.reset")) == 1
    await assert_dead(http, [before])


async def signing_in_until(
    event: asyncio.Event,
    http: httpx.AsyncClient,
    answers: list[int],
    issued: list[dict[str, Any]],
) -> httpx.Response:
    """Sign in as ada with the old password again and again until `event` is set (one more
    after it), so that some sign-ins straddle the change the event marks. Records every status
    and every token pair issued; returns the last answer."""
    while True:
        done = event.is_set()
        response = await password_grant(http, "ada@example.com", PASSWORD)
        answers.append(response.status_code)
        if response.status_code == 200:
            issued.append(response.json())
        if done:
            return response


async def test_sign_ins_racing_a_password_change_leave_no_session_behind(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    user = await register(http, "ada@example.com")
    changer = await sign_in(http, "ada@example.com")
    changed = asyncio.Event()
    issued: list[dict[str, Any]] = []
    answers: list[int] = []

    async def change() -> httpx.Response:
        response = await http.post(
            "/users/me/password",
            headers=bearer(changer["access_token"]),
            json={"current_password": PASSWORD, "new_password": "a brand new passphrase for her"},
        )
        changed.set()
        return response

    sign_in_until_changed = partial(signing_in_until, changed, http, answers, issued)
    change_response, *last = await burst([change] + [sign_in_until_changed] * (PARALLEL - 1))

    assert change_response.status_code == 204, change_response.text
    assert set(answers) <= {200, 400}, sorted(answers)
    assert all(r.status_code == 400 for r in last), statuses(last)
    # Whatever signed in with the old password, before or during the change, is over now;
    # only the session that changed the password lives on.
    await assert_dead(http, issued)
    assert await live_sessions_of(engine, user["id"]) == 1
    await no_orphans(engine)


async def test_deleting_a_user_while_they_sign_in_and_refresh(
    http: httpx.AsyncClient, engine: AsyncEngine, superuser: dict[str, str]
) -> None:
    user = await register(http, "ada@example.com")
    signed_in = [await sign_in(http, "ada@example.com") for _ in range(4)]
    deleted = asyncio.Event()
    answers: list[int] = []
    issued: list[dict[str, Any]] = []

    async def delete() -> httpx.Response:
        response = await http.delete(f"/admin/users/{user['id']}", headers=superuser)
        deleted.set()
        return response

    sign_in_until_deleted = partial(signing_in_until, deleted, http, answers, issued)
    calls = [delete] * 3 + [partial(refresh, http, t["refresh_token"]) for t in signed_in]
    calls += [sign_in_until_deleted] * (PARALLEL - len(calls))
    responses = await burst(calls)

    assert statuses(responses[:3]) == [204, 404, 404]
    refreshes, last = responses[3 : 3 + len(signed_in)], responses[3 + len(signed_in) :]
    assert {r.status_code for r in refreshes} <= {200, 400}, statuses(refreshes)
    assert set(answers) <= {200, 400}, sorted(answers)
    assert {r.status_code for r in last} == {400}, statuses(last)
    async with engine.connect() as connection:
        gone = await connection.scalar(select(func.count()).where(User.id == uuid.UUID(user["id"])))
        left = await connection.scalar(
            select(func.count()).where(UserSession.user_id == uuid.UUID(user["id"]))
        )
    assert gone == 0
    assert left == 0, "a session outlived its user"
    refreshed = [r.json() for r in refreshes if r.status_code == 200]
    await assert_dead(http, [*signed_in, *refreshed, *issued])
    await no_orphans(engine)


async def test_deleting_a_user_while_their_sessions_refresh(
    http: httpx.AsyncClient, engine: AsyncEngine, superuser: dict[str, str]
) -> None:
    user = await register(http, "ada@example.com")
    signed_in = [await sign_in(http, "ada@example.com") for _ in range(PARALLEL // 2)]
    deleted = asyncio.Event()
    issued: list[dict[str, Any]] = []

    async def delete() -> httpx.Response:
        response = await http.delete(f"/admin/users/{user['id']}", headers=superuser)
        deleted.set()
        return response

    async def refresh_until_deleted(pair: dict[str, Any]) -> httpx.Response:
        # Keep rotating one session's tokens so some rotations straddle the deletion.
        while True:
            done = deleted.is_set()
            response = await refresh(http, pair["refresh_token"])
            if response.status_code != 200 or done:
                return response
            pair = response.json()
            issued.append(pair)

    deletion, *last = await burst(
        [delete] + [partial(refresh_until_deleted, pair) for pair in signed_in]
    )

    assert deletion.status_code == 204, deletion.text
    assert {r.status_code for r in last} == {400}, statuses(last)
    assert await scalar(engine, "SELECT count(*) FROM sessions") == 1, "only root's is left"
    await assert_dead(http, [*signed_in, *issued][-PARALLEL:])
    await no_orphans(engine)
