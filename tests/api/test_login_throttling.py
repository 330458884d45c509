"""Failed sign-ins are throttled per account and per client IP, in memory or in Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from tests.support.attempts import count_events, in_parallel
from tests.support.flows import password_grant, register

WRONG = "definitely the wrong password"
REDIS_URL = os.environ.get("AUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "rate_limit_login_account_ip": "3/15 minutes",
        "rate_limit_login_account": "5/15 minutes",
        "rate_limit_login_ip": "6/15 minutes",
    }


@pytest.mark.usefixtures("app")
async def test_account_is_locked_after_too_many_failures(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    for _ in range(3):
        assert (await password_grant(client, "ada@example.com", WRONG)).status_code == 400

    response = await password_grant(client, "ada@example.com")  # even the right password

    assert response.status_code == 429
    assert response.json()["error"] == "temporarily_unavailable"
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60


@pytest.mark.usefixtures("app")
async def test_lock_is_per_account(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    await register(client, "bob@example.com")
    for _ in range(3):
        await password_grant(client, "ada@example.com", WRONG)

    assert (await password_grant(client, "bob@example.com")).status_code == 200


@pytest.mark.usefixtures("app")
async def test_success_clears_the_account_counter(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    for _ in range(2):
        await password_grant(client, "ada@example.com", WRONG)
    assert (await password_grant(client, "ada@example.com")).status_code == 200

    for _ in range(2):
        assert (await password_grant(client, "ada@example.com", WRONG)).status_code == 400
    assert (await password_grant(client, "ada@example.com")).status_code == 200


@pytest.mark.usefixtures("app")
async def test_ip_is_throttled_across_accounts(client: httpx.AsyncClient) -> None:
    for i in range(6):
        assert (await password_grant(client, f"nobody{i}@example.com", WRONG)).status_code == 400

    response = await password_grant(client, "someone-else@example.com", WRONG)

    assert response.status_code == 429


@pytest.fixture
async def redis_settings(settings: Settings) -> AsyncIterator[Settings]:
    connection = redis.from_url(REDIS_URL)
    try:
        await connection.ping()
    except (OSError, redis.ConnectionError) as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    # A fresh key namespace per test keeps parallel workers and earlier runs apart.
    prefix = f"authsvc-test-{uuid.uuid4().hex}"
    yield settings.model_copy(update={"redis_url": REDIS_URL, "rate_limit_key_prefix": prefix})
    keys = [key async for key in connection.scan_iter(f"{prefix}*")]
    if keys:
        await connection.delete(*keys)
    await connection.aclose()


async def _client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.usefixtures("session_factory")
async def test_replicas_share_counters_through_redis(redis_settings: Settings) -> None:
    replica_a, replica_b = create_app(redis_settings), create_app(redis_settings)
    async with (
        replica_a.router.lifespan_context(replica_a),
        replica_b.router.lifespan_context(replica_b),
        await _client_for(replica_a) as client_a,
        await _client_for(replica_b) as client_b,
    ):
        await register(client_a, "ada@example.com")
        for client in (client_a, client_b, client_a):
            assert (await password_grant(client, "ada@example.com", WRONG)).status_code == 400

        response = await password_grant(client_b, "ada@example.com")

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.usefixtures("session_factory")
async def test_with_redis_down_sign_in_works_and_limits_hold_in_process(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: every Redis call fails at once, as with Redis down.
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(down)
    async with app.router.lifespan_context(app), await _client_for(app) as client:
        await register(client, "ada@example.com")
        assert (await password_grant(client, "ada@example.com")).status_code == 200
        for _ in range(3):
            assert (await password_grant(client, "ada@example.com", WRONG)).status_code == 400

        throttled = await password_grant(client, "ada@example.com")

    assert throttled.status_code == 429
    warnings = [r for r in caplog.records if "rate-limit store unreachable" in r.getMessage()]
    assert len(warnings) == 1  # said once, not on every request


@pytest.mark.usefixtures("session_factory")
async def test_parallel_attempts_on_two_replicas_evaluate_at_most_the_limit(
    redis_settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    replica_a, replica_b = create_app(redis_settings), create_app(redis_settings)
    async with (
        replica_a.router.lifespan_context(replica_a),
        replica_b.router.lifespan_context(replica_b),
        await _client_for(replica_a) as client_a,
        await _client_for(replica_b) as client_b,
    ):
        await register(client_a, "ada@example.com")
        replicas = (client_a, client_b)
        counted = await in_parallel(
            30, lambda i: password_grant(replicas[i % 2], "ada@example.com", WRONG)
        )

    assert counted == {400: 3, 429: 27}
    assert await count_events(session_factory) == 3
