"""Throttling of sign-in failures, registrations and mail requests (the `limits` library).

Counters live in process memory by default and in Redis when `AUTH_REDIS_URL` is set, so that
every replica sees the same counts. When Redis cannot be reached, counting falls back to the
process's memory with a warning: throttling degrades, sign-in keeps working.
"""

from __future__ import annotations

import logging
import math
import time
from enum import StrEnum
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.exceptions import RedisError

from app.config import Settings
from app.observability.metrics import current_metrics
from app.services.errors import RateLimited

logger = logging.getLogger(__name__)


class LimitName(StrEnum):
    login_account = "login_account"
    login_ip = "login_ip"
    register_ip = "register_ip"
    email_ip = "email_ip"
    email_address = "email_address"
    # Budgets of the audit trail for denied admin calls, not limits on the calls themselves.
    audit_access_denied_ip = "audit_access_denied_ip"
    audit_access_denied_total = "audit_access_denied_total"


# Redis must answer quickly or not at all: a sign-in never waits on a hung counter store.
REDIS_TIMEOUT_SECONDS = 0.5
# While the shared store is down, say so at most this often.
OUTAGE_WARNING_INTERVAL_SECONDS = 60.0


def create_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        # "async+" selects the asyncio driver of the same backend.
        storage = storage_from_string(
            f"async+{settings.redis_url}",
            key_prefix=settings.rate_limit_key_prefix,
            # redis-py rather than the default coredis: its timeouts and errors are the ones
            # the fallback below expects.
            implementation="redispy",
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


class RateLimiter:
    """Named limits from settings, each counted per key (an IP, an account, an address)."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.enabled = settings.rate_limit_enabled
        self.storage = storage or create_storage(settings)
        self._shared = MovingWindowRateLimiter(self.storage)
        # Used while the shared store (Redis) cannot be reached: limits still hold per
        # replica, and sign-in keeps working.
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._last_warning = float("-inf")
        self._rules = {
            LimitName.login_account: parse(settings.rate_limit_login_account),
            LimitName.login_ip: parse(settings.rate_limit_login_ip),
            LimitName.register_ip: parse(settings.rate_limit_register_ip),
            LimitName.email_ip: parse(settings.rate_limit_email_ip),
            LimitName.email_address: parse(settings.rate_limit_email_address),
            LimitName.audit_access_denied_ip: parse(settings.audit_access_denied_ip),
            LimitName.audit_access_denied_total: parse(settings.audit_access_denied_total),
        }

    async def ensure_allowed(self, name: LimitName, key: str | None) -> None:
        """Raise `RateLimited` if `key` has used up `name`, without counting this call."""
        if not self.enabled or key is None:
            return
        item = self._rules[name]
        if not await self._call("test", item, name, key):
            current_metrics().throttled(name.value)
            raise RateLimited(retry_after_seconds=await self._retry_after(item, name, key))

    async def hit(self, name: LimitName, key: str | None) -> None:
        """Count one event against `key`."""
        if self.enabled and key is not None:
            await self._call("hit", self._rules[name], name, key)

    async def consume(self, name: LimitName, key: str | None) -> None:
        """Count one event, raising `RateLimited` if the limit was already used up."""
        if not self.enabled or key is None:
            return
        item = self._rules[name]
        if not await self._call("hit", item, name, key):
            current_metrics().throttled(name.value)
            raise RateLimited(retry_after_seconds=await self._retry_after(item, name, key))

    async def reset(self, name: LimitName, key: str | None) -> None:
        if self.enabled and key is not None:
            await self._call("clear", self._rules[name], name, key)

    async def _retry_after(self, item: RateLimitItem, name: LimitName, key: str) -> int:
        stats = await self._call("get_window_stats", item, name, key)
        reset_time: float = stats.reset_time
        return max(1, math.ceil(reset_time - time.time()))

    async def _call(self, operation: str, item: RateLimitItem, name: LimitName, key: str) -> Any:
        """`operation` on the shared store, or on the local one while the shared is down."""
        try:
            return await getattr(self._shared, operation)(item, name.value, key)
        except (RedisError, OSError) as error:
            now = time.monotonic()
            if now - self._last_warning >= OUTAGE_WARNING_INTERVAL_SECONDS:
                self._last_warning = now
                logger.warning(
                    "rate-limit store unreachable (%s); counting in this process meanwhile",
                    type(error).__name__,
                )
            return await getattr(self._local, operation)(item, name.value, key)
