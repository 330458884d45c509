"""Failover: the primary dies under write load, the synchronous standby is promoted, and the
service — given both hosts in its DSN (`target_session_attrs=read-write`) — finds the new
primary by itself. Meanwhile requests get 503 with `Retry-After`, never a 500; afterwards
every registration that was answered 201 is on the new primary: nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.failover.clusters import replicated_pair
from tests.support.flows import PASSWORD
from tests.support.processes import run_authsvc, start_serve

pytestmark = pytest.mark.xdist_group("failover")

WRITERS = 6


async def until(condition: Callable[[], bool], seconds: float, what: Callable[[], str]) -> float:
    """Wait for `condition`; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds} s: {what()}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_promoted_standby_takes_over_and_keeps_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    with replicated_pair() as pair:
        pair.primary.psql("CREATE DATABASE authsvc")
        settings = {
            "AUTH_DATABASE_URL": pair.database_url("authsvc"),
            "AUTH_KEYS_DIR": str(tmp_path / "keys"),
            "AUTH_RATE_LIMIT_REGISTER_IP": "100000/hour",
            # A dead host is noticed within a second or two, not the default minute.
            "AUTH_DB_CONNECT_TIMEOUT_SECONDS": "2",
            "AUTH_DB_COMMAND_TIMEOUT_SECONDS": "3",
        }
        run_authsvc("migrate", settings=settings)
        run_authsvc("keys", "generate", settings=settings)
        service = start_serve(settings, tmp_path / "serve.log")
        try:
            service.wait_until_ready()
            acknowledged: list[str] = []
            answers: Counter[int] = Counter()
            unexpected: list[str] = []
            stop = asyncio.Event()

            async def writer(number: int, client: httpx.AsyncClient) -> None:
                sequence = 0
                while not stop.is_set():
                    email = f"writer{number}-{sequence}@example.com"
                    sequence += 1
                    response = await client.post(
                        "/auth/register", json={"email": email, "password": PASSWORD}
                    )
                    answers[response.status_code] += 1
                    if response.status_code == 201:
                        acknowledged.append(email)
                    elif response.status_code == 503 and int(response.headers["retry-after"]) > 0:
                        await asyncio.sleep(0.1)
                    else:
                        unexpected.append(f"{response.status_code} {response.text[:300]}")

            async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
                writers = [asyncio.create_task(writer(n, client)) for n in range(WRITERS)]
                try:
                    await until(
                        lambda: len(acknowledged) >= 30,
                        30,
                        lambda: f"writes before the failover {answers}",
                    )
                    await asyncio.to_thread(pair.primary.stop, "immediate")
                    await until(
                        lambda: answers[503] > 0, 15, lambda: f"the outage seen as 503 {answers}"
                    )
                    await asyncio.to_thread(pair.standby.promote)
                    at_promotion = len(acknowledged)
                    recovery = await until(
                        lambda: len(acknowledged) >= at_promotion + 30,
                        30,
                        lambda: (
                            f"writes on the promoted standby {answers} {unexpected[:3]}\n"
                            + service.log.read_text()[-4000:]
                        ),
                    )
                finally:
                    stop.set()
                    await asyncio.gather(*writers)

            assert unexpected == [], unexpected[:5]
            assert answers[500] == 0
            stored = set(pair.standby.psql("SELECT email FROM users", "authsvc").split())
            lost = [email for email in acknowledged if email not in stored]
            assert lost == [], f"{len(lost)} acknowledged registrations lost: {lost[:5]}"
            assert not pair.standby.is_in_recovery()
            print(
                f"failover: {answers[201]} answered 201, {answers[503]} answered 503, "
                f"writes resumed {recovery:.1f} s after the promotion"
            )
        finally:
            service.stop()
