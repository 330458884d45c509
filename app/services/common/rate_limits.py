"""Throttling of sign-in failures, registrations, mail requests and one-time-token redemptions.

Limits are reservations: an attempt takes its slot before the slow or secret-revealing check
(a password hash, a code, a one-time token), so N parallel attempts against a limit L evaluate
at most L and the rest get `RateLimited`. An attempt that turns out not to count (a sign-in
that succeeded) gives its slots back.

Slots live in process memory by default and in Redis when `AUTH_REDIS_URL` is set, so that
every replica sees the same counts. When Redis cannot be reached, counting falls back to the
process's memory with a warning: throttling degrades to per-replica, sign-in keeps working.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum

from limits import parse
from redis.exceptions import RedisError

from app.config import Settings
from app.errors import RateLimited
from app.observability.metrics import current_metrics
from app.services.common.rate_limit_store import MemorySlotStore, RedisSlotStore, Slot, SlotStore

logger = logging.getLogger(__name__)


class LimitName(StrEnum):
    # Sign-in failures (passwords, current-password checks, client secrets).
    login_account_ip = "login_account_ip"
    login_account = "login_account"
    login_ip = "login_ip"
    # The one notice mail per window when `login_account` trips.
    login_account_notice = "login_account_notice"
    register_ip = "register_ip"
    # Verification and reset requests.
    email_ip = "email_ip"
    email_address = "email_address"
    email_address_total = "email_address_total"
    # Redemptions of one-time tokens (verification and reset links).
    token_ip = "token_ip"
    # Budgets of the audit trail for denied admin calls, not limits on the calls themselves.
    audit_access_denied_ip = "audit_access_denied_ip"
    audit_access_denied_total = "audit_access_denied_total"


# Redis must answer quickly or not at all: a sign-in never waits on a hung counter store.
REDIS_TIMEOUT_SECONDS = 0.5
# While the shared store is down, say so at most this often.
OUTAGE_WARNING_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Rule:
    limit: int
    window_seconds: int


def rules_from_settings(settings: Settings) -> dict[LimitName, Rule]:
    def rule(notation: str) -> Rule:
        item = parse(notation)
        return Rule(limit=item.amount, window_seconds=item.get_expiry())

    account = rule(settings.rate_limit_login_account)
    return {
        LimitName.login_account_ip: rule(settings.rate_limit_login_account_ip),
        LimitName.login_account: account,
        LimitName.login_ip: rule(settings.rate_limit_login_ip),
        LimitName.login_account_notice: Rule(limit=1, window_seconds=account.window_seconds),
        LimitName.register_ip: rule(settings.rate_limit_register_ip),
        LimitName.email_ip: rule(settings.rate_limit_email_ip),
        LimitName.email_address: rule(settings.rate_limit_email_address),
        LimitName.email_address_total: rule(settings.rate_limit_email_address_total),
        LimitName.token_ip: rule(settings.rate_limit_token_ip),
        LimitName.audit_access_denied_ip: rule(settings.audit_access_denied_ip),
        LimitName.audit_access_denied_total: rule(settings.audit_access_denied_total),
    }


@dataclass(slots=True)
class Reservation:
    """Slots taken for one attempt. They count unless `release`d."""

    _limiter: RateLimiter
    _slots: list[tuple[SlotStore, Slot]] = field(default_factory=list)

    def hold(self, store: SlotStore, slot: Slot) -> None:
        """Keep `slot`, taken from `store`, as part of this attempt."""
        self._slots.append((store, slot))

    async def release(self) -> None:
        """Give the slots back: the attempt does not count against any limit."""
        slots, self._slots = self._slots, []
        for store, slot in slots:
            await self._limiter.give_back(store, slot)


class RateLimiter:
    """Named limits from settings, each counted per key (an IP, an account, an address)."""

    def __init__(self, settings: Settings, store: SlotStore | None = None) -> None:
        self.enabled = settings.rate_limit_enabled
        self.rules = rules_from_settings(settings)
        self.shared: SlotStore = store or _store_from_settings(settings)
        # Used while the shared store (Redis) cannot be reached: limits still hold per
        # replica, and sign-in keeps working.
        self.local = MemorySlotStore()
        self._last_warning = float("-inf")

    async def reserve(self, *limits: tuple[LimitName, str | None]) -> Reservation:
        """Take one slot of each named limit for its key (None: not counted), in order.

        If any limit is used up, the slots already taken are given back and `RateLimited`
        says when to retry: the refused attempt costs nothing.
        """
        reservation = Reservation(self)
        if not self.enabled:
            return reservation
        for name, key in limits:
            if key is None:
                continue
            store, taken = await self._take(name, key)
            if isinstance(taken, Slot):
                reservation.hold(store, taken)
                continue
            await reservation.release()
            current_metrics().throttled(name.value)
            raise RateLimited(retry_after_seconds=max(1, math.ceil(taken)), limit=name.value)
        return reservation

    async def consume(self, name: LimitName, key: str | None) -> None:
        """Count one event against `key`, raising `RateLimited` if the limit is used up."""
        await self.reserve((name, key))

    async def try_consume(self, name: LimitName, key: str | None) -> bool:
        """Like `consume`, but answers whether the slot was taken instead of raising."""
        try:
            await self.reserve((name, key))
        except RateLimited:
            return False
        return True

    async def clear(self, name: LimitName, key: str | None) -> None:
        """Forget every slot `key` holds under `name`."""
        if not self.enabled or key is None:
            return
        scoped = _scoped(name, key)
        await self.local.clear(scoped)
        try:
            await self.shared.clear(scoped)
        except (RedisError, OSError) as error:
            self._warn_outage(error)

    async def give_back(self, store: SlotStore, slot: Slot) -> None:
        """Return `slot` to the store that gave it; never raises (an outage only warns)."""
        try:
            await store.give_back(slot)
        except (RedisError, OSError) as error:
            # The slot expires with its window: a lost give-back only throttles sooner.
            self._warn_outage(error)

    async def _take(self, name: LimitName, key: str) -> tuple[SlotStore, Slot | float]:
        rule, scoped = self.rules[name], _scoped(name, key)
        try:
            return self.shared, await self.shared.take(scoped, rule.limit, rule.window_seconds)
        except (RedisError, OSError) as error:
            self._warn_outage(error)
            return self.local, await self.local.take(scoped, rule.limit, rule.window_seconds)

    def _warn_outage(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= OUTAGE_WARNING_INTERVAL_SECONDS:
            self._last_warning = now
            logger.warning(
                "rate-limit store unreachable (%s); counting in this process meanwhile",
                type(error).__name__,
            )

    async def close(self) -> None:
        if isinstance(self.shared, RedisSlotStore):
            await self.shared.close()


def _scoped(name: LimitName, key: str) -> str:
    return f"{name.value}:{key}"


def _store_from_settings(settings: Settings) -> SlotStore:
    if settings.redis_url:
        return RedisSlotStore(
            settings.redis_url, settings.rate_limit_key_prefix, REDIS_TIMEOUT_SECONDS
        )
    return MemorySlotStore()
