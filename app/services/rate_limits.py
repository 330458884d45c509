"""Throttling of sign-in failures, registrations and mail requests (the `limits` library).

Counters live in process memory by default and in Redis when `AUTH_REDIS_URL` is set, so that
every replica sees the same counts.
"""

from __future__ import annotations

import math
import time
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from app.config import Settings
from app.observability.metrics import current_metrics
from app.services.errors import RateLimited


class LimitName(StrEnum):
    login_account = "login_account"
    login_ip = "login_ip"
    register_ip = "register_ip"
    email_ip = "email_ip"
    email_address = "email_address"


def create_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        # "async+" selects the asyncio driver of the same backend.
        storage = storage_from_string(
            f"async+{settings.redis_url}", key_prefix=settings.rate_limit_key_prefix
        )
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


class RateLimiter:
    """Named limits from settings, each counted per key (an IP, an account, an address)."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.enabled = settings.rate_limit_enabled
        self.storage = storage or create_storage(settings)
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._rules = {
            LimitName.login_account: parse(settings.rate_limit_login_account),
            LimitName.login_ip: parse(settings.rate_limit_login_ip),
            LimitName.register_ip: parse(settings.rate_limit_register_ip),
            LimitName.email_ip: parse(settings.rate_limit_email_ip),
            LimitName.email_address: parse(settings.rate_limit_email_address),
        }

    async def ensure_allowed(self, name: LimitName, key: str | None) -> None:
        """Raise `RateLimited` if `key` has used up `name`, without counting this call."""
        if not self.enabled or key is None:
            return
        item = self._rules[name]
        if not await self._strategy.test(item, name.value, key):
            current_metrics().throttled(name.value)
            raise RateLimited(retry_after_seconds=await self._retry_after(item, name, key))

    async def hit(self, name: LimitName, key: str | None) -> None:
        """Count one event against `key`."""
        if self.enabled and key is not None:
            await self._strategy.hit(self._rules[name], name.value, key)

    async def consume(self, name: LimitName, key: str | None) -> None:
        """Count one event, raising `RateLimited` if the limit was already used up."""
        if not self.enabled or key is None:
            return
        item = self._rules[name]
        if not await self._strategy.hit(item, name.value, key):
            current_metrics().throttled(name.value)
            raise RateLimited(retry_after_seconds=await self._retry_after(item, name, key))

    async def reset(self, name: LimitName, key: str | None) -> None:
        if self.enabled and key is not None:
            await self._strategy.clear(self._rules[name], name.value, key)

    async def _retry_after(self, item: RateLimitItem, name: LimitName, key: str) -> int:
        stats = await self._strategy.get_window_stats(item, name.value, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
