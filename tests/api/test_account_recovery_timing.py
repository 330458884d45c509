"""No oracle: `/auth/password/forgot` and `/auth/verify/request` answer in the same time whether
or not the account exists (issue 14, item 4). Measured on a real socket, as an attacker would."""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import httpx
import pytest

from tests.support.flows import register
from tests.support.live_server import LiveService, live_service

__all__ = ["live_service"]  # the fixture, re-exported for pytest

SAMPLES = 40
# Medians within 10% of each other; a noisy machine gets a few rounds to show it.
TOLERANCE = 0.10
ROUNDS = 3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "rate_limit_email_ip": "10000/hour",
        "rate_limit_email_address": "10000/hour",
        "rate_limit_email_address_total": "10000/hour",
    }


async def timed(client: httpx.AsyncClient, path: str, email: str) -> float:
    started = time.perf_counter()
    response = await client.post(path, json={"email": email})
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.text
    return elapsed


async def median_times(client: httpx.AsyncClient, path: str) -> tuple[float, float]:
    """Medians for an existing and an unknown address over interleaved samples, in random
    order, each after the previous request's after-response work has had time to finish."""
    order = ["ada@example.com", "nobody@example.com"] * SAMPLES
    random.shuffle(order)
    times: dict[str, list[float]] = {"ada@example.com": [], "nobody@example.com": []}
    for email in order:
        times[email].append(await timed(client, path, email))
        await asyncio.sleep(0.03)
    return statistics.median(times["ada@example.com"]), statistics.median(
        times["nobody@example.com"]
    )


@pytest.mark.parametrize("path", ["/auth/password/forgot", "/auth/verify/request"])
async def test_the_answer_takes_as_long_for_an_unknown_address(
    live_service: LiveService, path: str
) -> None:
    async with httpx.AsyncClient(base_url=live_service.url, timeout=10) as client:
        await register(client, "ada@example.com")
        for _ in range(5):  # warm up connections and caches on both paths
            await timed(client, path, "ada@example.com")
            await timed(client, path, "nobody@example.com")
        rounds = []
        for _ in range(ROUNDS):
            existing, unknown = await median_times(client, path)
            rounds.append((existing, unknown))
            if abs(existing - unknown) <= TOLERANCE * min(existing, unknown):
                return
    pytest.fail(
        "medians differ by more than 10% in every round (existing, unknown ms): "
        + ", ".join(f"({e * 1000:.2f}, {u * 1000:.2f})" for e, u in rounds)
    )
