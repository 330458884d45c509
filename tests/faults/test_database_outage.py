"""The database goes away and comes back: requests fail fast with 503 and recover by
themselves. The outage is real: PostgreSQL is reached through a proxy the test cuts."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.faults.tcp_proxy import TcpProxy
from tests.support.flows import PASSWORD, register

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def settings_overrides(proxy: TcpProxy, database_url: str) -> dict[str, object]:
    return {
        "database_url": proxy.url_to(database_url),
        "db_connect_timeout_seconds": 1.0,
        "db_pool_timeout_seconds": 1.0,
    }


async def test_requests_fail_fast_with_503_during_an_outage_and_recover_after(
    client: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    await register(client, "before@example.com")
    assert (await client.get("/health/ready")).status_code == 200

    await proxy.stop()
    started = time.monotonic()
    during = await client.post(
        "/auth/register", json={"email": "during@example.com", "password": PASSWORD}
    )
    token = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "before@example.com", "password": PASSWORD},
    )
    ready = await client.get("/health/ready")
    elapsed = time.monotonic() - started

    for response in (during, token):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        assert "Traceback" not in response.text
    assert ready.status_code == 503
    assert elapsed < 5, f"outage answers took {elapsed:.1f} s"

    await proxy.start()
    await register(client, "after@example.com")  # stale pooled connections are replaced
    assert (await client.get("/health/ready")).status_code == 200
    signed_in = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "before@example.com", "password": PASSWORD},
    )
    assert signed_in.status_code == 200
    # Nothing written during the outage half-exists afterwards.
    retry = await client.post(
        "/auth/register", json={"email": "during@example.com", "password": PASSWORD}
    )
    assert retry.status_code == 201
