"""A revoked token is refused everywhere within a second: each replica caches what token checks
read (app/services/tokens/token_state_cache.py), and every change that ends or narrows access,
made on one replica (or by the command line), reaches the other replicas' caches through
PostgreSQL's LISTEN/NOTIFY. Measured here on three `authsvc serve` processes, with warm caches,
for each kind of change; and with the replicas' listening connections cut (the caches are
bypassed, the guarantee holds)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.flows import PASSWORD, bearer, register, sign_in
from tests.support.mfa import enrol_totp
from tests.support.processes import run_authsvc

pytestmark = pytest.mark.xdist_group("scale")

# The promise, and how long a test waits before it calls a replica that still answers 200 a
# failure (with the time it took in the message).
PROMISE_SECONDS = 1.0
GIVE_UP_SECONDS = 5.0
ADMIN_EMAIL = "propagation-admin@example.com"


async def refused_everywhere(
    clients: list[httpx.AsyncClient], access_token: str, path: str = "/users/me"
) -> float:
    """Seconds until every replica refuses `access_token` at `path` (401 or 403)."""
    started = time.monotonic()
    pending = list(clients)
    while pending:
        answers = await asyncio.gather(
            *(client.get(path, headers=bearer(access_token)) for client in pending)
        )
        pending = [
            client
            for client, answer in zip(pending, answers, strict=True)
            if answer.status_code == 200
        ]
        elapsed = time.monotonic() - started
        assert elapsed < GIVE_UP_SECONDS, [str(client.base_url) for client in pending]
        if pending:
            await asyncio.sleep(0.01)
    return time.monotonic() - started


async def warm(
    clients: list[httpx.AsyncClient], access_token: str, path: str = "/users/me"
) -> None:
    """Every replica has checked the token (twice: the second answer is the cache's)."""
    for _ in range(2):
        for client in clients:
            answer = await client.get(path, headers=bearer(access_token))
            assert answer.status_code == 200, (str(client.base_url), answer.text)


@pytest.fixture(scope="module")
def admin_created(replica_settings: dict[str, str]) -> str:
    run_authsvc(
        "create-superuser",
        "--email",
        ADMIN_EMAIL,
        "--password",
        PASSWORD,
        settings=replica_settings,
    )
    return ADMIN_EMAIL


async def admin(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    return bearer((await sign_in(client, email))["access_token"])


async def user_id_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await client.get("/users/me", headers=headers)).json()["id"])


Change = Callable[[list[httpx.AsyncClient], str, dict[str, Any], dict[str, str]], Awaitable[None]]


async def logout(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    assert (
        await clients[0].post("/auth/logout", headers=bearer(tokens["access_token"]))
    ).status_code == 204


async def logout_all(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    assert (
        await clients[0].post("/auth/logout-all", headers=bearer(tokens["access_token"]))
    ).status_code == 204


async def revoke(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    answer = await clients[0].post("/auth/revoke", data={"token": tokens["refresh_token"]})
    assert answer.status_code == 200


async def password_change(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    other = await sign_in(clients[0], email)  # the change keeps the session that made it
    answer = await clients[0].post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": f"{PASSWORD} again"},
        headers=bearer(other["access_token"]),
    )
    assert answer.status_code == 204, answer.text


async def deactivation(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    user_id = await user_id_of(clients[0], bearer(tokens["access_token"]))
    answer = await clients[0].patch(
        f"/admin/users/{user_id}", json={"is_active": False}, headers=root
    )
    assert answer.status_code == 200, answer.text


async def deletion(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    user_id = await user_id_of(clients[0], bearer(tokens["access_token"]))
    assert (await clients[0].delete(f"/admin/users/{user_id}", headers=root)).status_code == 204


async def sessions_ended_by_an_admin(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    user_id = await user_id_of(clients[0], bearer(tokens["access_token"]))
    answer = await clients[0].delete(f"/admin/users/{user_id}/sessions", headers=root)
    assert answer.status_code == 204


async def second_factor_turned_on(
    clients: list[httpx.AsyncClient], email: str, tokens: dict[str, Any], root: dict[str, str]
) -> None:
    other = await sign_in(clients[0], email)  # confirming ends every other session
    await enrol_totp(clients[0], other["access_token"])


@pytest.mark.parametrize(
    "change",
    [
        logout,
        logout_all,
        revoke,
        password_change,
        deactivation,
        deletion,
        sessions_ended_by_an_admin,
        second_factor_turned_on,
    ],
    ids=lambda change: change.__name__,
)
async def test_a_change_on_one_replica_is_refused_by_every_replica_within_a_second(
    clients: list[httpx.AsyncClient], email: str, admin_created: str, change: Change
) -> None:
    root = await admin(clients[0], admin_created)
    await register(clients[0], email)
    tokens = await sign_in(clients[0], email)
    await warm(clients, tokens["access_token"])

    await change(clients, email, tokens, root)
    elapsed = await refused_everywhere(clients, tokens["access_token"])
    print(f"{change.__name__}: refused by every replica after {elapsed * 1000:.0f} ms")

    assert elapsed <= PROMISE_SECONDS, (
        f"{change.__name__}: refused everywhere after {elapsed:.3f} s"
    )


async def test_a_role_taken_away_on_one_replica_stops_its_admin_routes_everywhere_within_a_second(
    clients: list[httpx.AsyncClient], email: str, admin_created: str
) -> None:
    root = await admin(clients[0], admin_created)
    await register(clients[0], email)
    staff = await sign_in(clients[0], email)
    user_id = await user_id_of(clients[0], bearer(staff["access_token"]))
    granted = await clients[0].put(
        f"/admin/users/{user_id}/roles", json={"roles": ["admin"]}, headers=root
    )
    assert granted.status_code == 200, granted.text
    await warm(clients, staff["access_token"], "/admin/users")

    taken = await clients[0].put(f"/admin/users/{user_id}/roles", json={"roles": []}, headers=root)
    assert taken.status_code == 200
    elapsed = await refused_everywhere(clients, staff["access_token"], "/admin/users")

    assert elapsed <= PROMISE_SECONDS, f"refused everywhere after {elapsed:.3f} s"


async def test_with_the_listening_connections_cut_a_change_is_still_refused_within_a_second(
    clients: list[httpx.AsyncClient], email: str, replica_settings: dict[str, str]
) -> None:
    await register(clients[0], email)
    tokens = await sign_in(clients[0], email)
    await warm(clients, tokens["access_token"])
    engine = create_async_engine(replica_settings["AUTH_DATABASE_URL"])
    try:
        async with engine.begin() as connection:
            cut = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE '%pg_notify%' "
                    "AND pid <> pg_backend_pid()"
                )
            )
            assert len(cut.all()) >= len(clients)  # every replica's listener
            # The change itself goes straight to the database: no replica commits it.
            await connection.execute(
                text(
                    "UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL AND user_id = "
                    "(SELECT id FROM users WHERE email = :email)"
                ),
                {"email": email},
            )
        elapsed = await refused_everywhere(clients, tokens["access_token"])
    finally:
        await engine.dispose()

    assert elapsed <= PROMISE_SECONDS, f"refused everywhere after {elapsed:.3f} s"
    # And the listeners are back by themselves: a new sign-in is checked, and ended, again.
    renewed = await sign_in(clients[1], email)
    await asyncio.sleep(1.0)
    await warm(clients, renewed["access_token"])
    assert (
        await clients[2].post("/auth/logout", headers=bearer(renewed["access_token"]))
    ).status_code == 204
    assert await refused_everywhere(clients, renewed["access_token"]) <= PROMISE_SECONDS
