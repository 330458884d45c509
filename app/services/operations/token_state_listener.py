"""Keeps this process's token-state cache current: listens on PostgreSQL's
`authsvc_token_state` channel (the triggers of migration 0015 notify it at every committed
change a token check reads) and hands each notification to the cache, and proves every
`HEARTBEAT_INTERVAL` that it is current by sending itself a heartbeat through the channel.

It holds one connection of its own (its own one-connection engine). Whatever goes wrong — the
connection refused, dropped, frozen (a heartbeat unanswered for `HEARTBEAT_TIMEOUT`), a
listener that cannot hear (PgBouncer in transaction mode keeps no LISTEN) — the cache stops
answering (it needs fresh heartbeats) and the listener reconnects by itself, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.services.tokens.token_state_cache import HEARTBEAT_INTERVAL, TokenStateCache

logger = logging.getLogger(__name__)

CHANNEL = "authsvc_token_state"
HEARTBEAT_PREFIX = "heartbeat:"
# A heartbeat not back by then: the connection is taken for dead and made again.
HEARTBEAT_TIMEOUT = 2.0
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
STOP_TIMEOUT = 2.0


class TokenStateListener:
    def __init__(
        self,
        engine: AsyncEngine,
        cache: TokenStateCache,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.clock = clock
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._last_heartbeat_back = 0.0
        self._kicked = asyncio.Event()
        cache.on_local_commit = self._kicked.set
        # Every replica's heartbeats reach every listener: each knows its own by this prefix.
        self._heartbeat_prefix = f"{HEARTBEAT_PREFIX}{uuid.uuid4().hex}:"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="token state listener")

    async def stop(self) -> None:
        """Stop listening (the cache answers nothing from then on). Bounded: a connection
        stuck in the network is given up, not waited for."""
        task, self._task = self._task, None
        self.cache.channel_lost()
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: no answers until heard again
                self.cache.channel_lost()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                logger.warning(
                    "token state channel lost (%s); the cache is bypassed, retrying in %.1f s",
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _listen(self) -> None:
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection  # asyncpg.Connection
            await driver.add_listener(CHANNEL, self._notified)
            self._last_heartbeat_back = self.clock()
            logger.info("token state channel listening")
            try:
                while True:
                    sent_at = self.clock()
                    await asyncio.wait_for(
                        driver.execute(
                            "SELECT pg_notify($1, $2)",
                            CHANNEL,
                            f"{self._heartbeat_prefix}{sent_at!r}",
                        ),
                        HEARTBEAT_TIMEOUT,
                    )
                    if self.clock() - self._last_heartbeat_back > HEARTBEAT_TIMEOUT:
                        raise TimeoutError("heartbeats do not come back")
                    # The next heartbeat at the interval, or at once after a local commit.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._kicked.wait(), self.interval)
                    self._kicked.clear()
            finally:
                self.cache.channel_lost()
                # Closed, not handed back to the pool: it may be in the middle of a heartbeat,
                # and a listening connection must not serve anything else.
                with contextlib.suppress(Exception):
                    await connection.invalidate()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(self._heartbeat_prefix):
            try:
                sent_at = float(payload.removeprefix(self._heartbeat_prefix))
            except ValueError:
                return
            self._last_heartbeat_back = self.clock()
            self.cache.heartbeat(sent_at)
        elif not payload.startswith(HEARTBEAT_PREFIX):  # another replica's heartbeat
            self.cache.invalidate(payload)
