"""A sign-in holds no database connection while it waits for or runs the password hash
(issue 14, item 8): a flood of sign-ins on a small pool leaves room for token checks."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.flows import bearer, password_grant, register, sign_in

SIGN_INS = 60


@pytest.fixture
def settings_overrides(backend: str) -> dict[str, object]:
    if backend != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's; SQLite opens its file per use")
    return {
        "rate_limit_enabled": False,
        "db_pool_size": 2,
        "db_max_overflow": 0,
        "db_pool_timeout_seconds": 2.0,
        # Hashes that take real time, one at a time: sign-ins queue for the hash thread.
        "argon2_memory_cost_kib": 19456,
        "argon2_time_cost": 3,
        "password_hash_workers": 1,
    }


@pytest.mark.usefixtures("app")
async def test_token_checks_get_a_connection_during_a_sign_in_flood(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")
    headers = bearer((await sign_in(client, "ada@example.com"))["access_token"])

    flood = [
        asyncio.create_task(password_grant(client, "ada@example.com")) for _ in range(SIGN_INS)
    ]
    checks = []
    while not all(task.done() for task in flood):
        checks.append(await client.get("/users/me", headers=headers))
        await asyncio.sleep(0.05)
    sign_ins = await asyncio.gather(*flood)

    assert len(checks) >= 5  # the flood lasted long enough to matter
    assert [r.status_code for r in checks] == [200] * len(checks)
    assert {r.status_code for r in sign_ins} == {200}
