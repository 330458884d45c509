"""Where rate-limit reservations are kept: a moving window of slots per key.

A key holds at most `limit` slots taken within the last `window` seconds. Taking a slot is one
atomic step (a Lua script in Redis, a synchronous section on the event loop in memory), so any
number of concurrent attempts against a limit L get at most L slots. A slot can be given back
(an attempt that turned out not to count), which a plain counter cannot do exactly.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

# Slots older than the window are dropped; the oldest live one says when the next frees up.
# Redis's own clock is used, so replicas with skewed clocks still share one window.
_RESERVE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window_ms = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window_ms)
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window_ms - now_ms
"""


@dataclass(frozen=True, slots=True)
class Slot:
    """One taken slot: enough to give it back."""

    key: str
    member: str


class SlotStore(Protocol):
    async def take(self, key: str, limit: int, window_seconds: int) -> Slot | float:
        """A slot under `key`, or (when `limit` slots are taken) the seconds until one frees."""
        ...

    async def give_back(self, slot: Slot) -> None: ...

    async def clear(self, key: str) -> None: ...


class RedisSlotStore:
    """Slots in Redis sorted sets (member: a random id, score: when it was taken), shared by
    every replica. Calls fail fast (`timeout_seconds`) with `RedisError`/`OSError`."""

    def __init__(self, url: str, key_prefix: str, timeout_seconds: float) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._prefix = key_prefix
        self._reserve = self._redis.register_script(_RESERVE)

    async def take(self, key: str, limit: int, window_seconds: int) -> Slot | float:
        member = uuid.uuid4().hex
        wait_ms = await self._reserve(
            keys=[self._key(key)], args=[window_seconds * 1000, limit, member]
        )
        if int(wait_ms) < 0:
            return Slot(key, member)
        return int(wait_ms) / 1000

    async def give_back(self, slot: Slot) -> None:
        await self._redis.zrem(self._key(slot.key), slot.member)

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._key(key))

    async def close(self) -> None:
        await self._redis.aclose()

    def _key(self, key: str) -> str:
        return f"{self._prefix}:slots:{key}"


class MemorySlotStore:
    """Slots in this process. No await between reading and writing a key: on one event loop
    that makes each call atomic without a lock."""

    # Sweep expired keys after this many calls, so keys an attacker invents do not pile up.
    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        # key -> (window, member -> monotonic time taken), oldest first
        self._slots: dict[str, tuple[float, OrderedDict[str, float]]] = {}
        self._calls = 0

    async def take(self, key: str, limit: int, window_seconds: int) -> Slot | float:
        now = time.monotonic()
        self._maybe_sweep(now)
        _, taken = self._slots.setdefault(key, (window_seconds, OrderedDict()))
        _drop_expired(taken, now - window_seconds)
        if len(taken) < limit:
            member = uuid.uuid4().hex
            taken[member] = now
            return Slot(key, member)
        oldest = next(iter(taken.values()))
        return oldest + window_seconds - now

    async def give_back(self, slot: Slot) -> None:
        entry = self._slots.get(slot.key)
        if entry is not None:
            entry[1].pop(slot.member, None)

    async def clear(self, key: str) -> None:
        self._slots.pop(key, None)

    def _maybe_sweep(self, now: float) -> None:
        self._calls += 1
        if self._calls % self.SWEEP_EVERY:
            return
        for key, (window, taken) in list(self._slots.items()):
            _drop_expired(taken, now - window)
            if not taken:
                del self._slots[key]


def _drop_expired(taken: OrderedDict[str, float], cutoff: float) -> None:
    while taken:
        member, when = next(iter(taken.items()))
        if when > cutoff:
            return
        del taken[member]
