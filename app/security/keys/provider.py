"""The key ring in use: switched when the schedule says (a staged key becomes active, a retired
key's publication ends) and reloaded when the ring changes in its store."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from app.config import Settings
from app.security.keys.directory import KeyDirectory
from app.security.keys.errors import KeyConfigurationError
from app.security.keys.lifecycle import KeySchedule
from app.security.keys.loading import configured_previous_keys, load_key_schedule
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SigningKey

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_schedule(loaded: KeySchedule | KeyRing) -> KeySchedule:
    return loaded if isinstance(loaded, KeySchedule) else KeySchedule.of_ring(loaded)


class KeyRingProvider:
    """Hands out the key ring in use.

    It holds the ring's schedule (`KeySchedule`) and works out the ring from it: at the moment
    a staged key is due to sign, the next `current()` signs with it, on every replica at
    once, whoever wrote what when. `current()` sits on every request's path: between checks
    it costs one monotonic clock read; a check is due every `check_interval_seconds` and at
    the schedule's next change.

    The schedule comes from a store in one of two ways:

    - pulled: `load` (with `revision`, an opaque value that changes with the store) is
      called at a check when the revision changed: the key directory, read synchronously;
    - pushed: a watcher calls `install` with each new schedule: the database store, read
      asynchronously off the request path.

    A token naming an unknown kid makes a pulling provider check early (at most once a
    second), and a pushed one call `on_unknown_kid` (at most as often), so a replica soon
    verifies tokens of a key another replica just made. A failed reload keeps the ring in
    use; `extra_keys` (configured previous keys) are published beside the ring's own.
    """

    RECHECK_ON_UNKNOWN_KID_SECONDS: Final = 1.0

    def __init__(
        self,
        load: Callable[[datetime], KeySchedule | KeyRing] | None = None,
        *,
        schedule: KeySchedule | None = None,
        revision: Callable[[], object] | None = None,
        installed_revision: object = None,
        extra_keys: Sequence[SigningKey] = (),
        on_unknown_kid: Callable[[], None] | None = None,
        check_interval_seconds: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Give `load` (pulled) or `schedule` and its `installed_revision` (pushed)."""
        if (load is None) == (schedule is None):
            raise ValueError("give either `load` or `schedule`")
        self._load = load
        self._revision_of = revision or (lambda: None)
        self._extra_keys = tuple(extra_keys)
        self._on_unknown_kid = on_unknown_kid
        self._interval = check_interval_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        now = clock()
        if load is not None:
            self._revision = self._revision_of()
            schedule = _as_schedule(load(now))
        else:
            self._revision = installed_revision
        assert schedule is not None
        self._last_check = -float("inf")
        self._use(schedule, now)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        check_interval_seconds: float | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> KeyRingProvider:
        """The configured key, or the ring in `AUTH_KEYS_DIR`, watched for changes (the
        directory store; the database store's provider is built by its watcher)."""
        revision = None
        if not settings.has_configured_signing_key:
            revision = KeyDirectory(settings.keys_dir).revision
        return cls(
            lambda now: load_key_schedule(settings, now),
            revision=revision,
            extra_keys=configured_previous_keys(settings),
            check_interval_seconds=(
                settings.key_check_interval_seconds
                if check_interval_seconds is None
                else check_interval_seconds
            ),
            clock=clock,
            monotonic=monotonic,
        )

    @classmethod
    def fixed(cls, ring: KeyRing, *, clock: Callable[[], datetime] = utcnow) -> KeyRingProvider:
        """A provider of one ring, which only drops retired keys as their publication ends."""
        return cls(lambda _now: ring, clock=clock)

    @property
    def schedule(self) -> KeySchedule:
        """The schedule the ring in use comes from."""
        return self._schedule

    @property
    def revision(self) -> object:
        """The store's revision the schedule was read at."""
        return self._revision

    def current(self) -> KeyRing:
        """The ring to sign and verify with now."""
        if self._monotonic() >= self._next_check:
            self._check()
        return self._ring

    def verification_key(self, kid: str) -> SigningKey | None:
        """The published key named `kid`; an unknown kid may trigger an early reload."""
        key = self.current().verification_key(kid)
        if key is None and (
            self._monotonic() >= self._last_check + self.RECHECK_ON_UNKNOWN_KID_SECONDS
        ):
            if self._load is None:
                self._last_check = self._monotonic()
                if self._on_unknown_kid is not None:
                    self._on_unknown_kid()
            else:
                self._check()
                key = self._ring.verification_key(kid)
        return key

    def reload(self) -> KeyRing:
        """Reload the ring now (pulled) or work it out again (pushed); errors propagate."""
        with self._lock:
            now = self._clock()
            schedule, revision = self._schedule, self._revision
            if self._load is not None:
                revision = self._revision_of()
                schedule = _as_schedule(self._load(now))
            self._use(schedule, now)
            self._revision = revision
            return self._ring

    def install(self, schedule: KeySchedule, revision: object) -> None:
        """Use `schedule`, read at the store's `revision`, from now on; a schedule that gives
        no ring (no active key with its private half) raises and changes nothing."""
        with self._lock:
            self._use(schedule, self._clock())
            self._revision = revision

    def _use(self, schedule: KeySchedule, now: datetime) -> None:
        ring = schedule.ring_at(now, self._extra_keys)
        self._schedule, self._ring = schedule, ring
        self._next_change = schedule.next_change_after(now)
        self._plan_next_check(now)

    def _plan_next_check(self, now: datetime) -> None:
        self._last_check = self._monotonic()
        self._next_check = self._last_check + self._interval
        if self._next_change is not None:
            due_in = max(0.0, (self._next_change - now).total_seconds())
            self._next_check = min(self._next_check, self._last_check + due_in)

    def _check(self) -> None:
        # A concurrent caller already checking is enough; the others go on with the old ring.
        if not self._lock.acquire(blocking=False):
            return
        try:
            now = self._clock()
            schedule, revision = self._schedule, self._revision
            if self._load is not None:
                revision = self._revision_of()
                if revision != self._revision:
                    schedule = _as_schedule(self._load(now))
            if schedule is not self._schedule or (
                self._next_change is not None and now >= self._next_change
            ):
                self._use(schedule, now)
                self._revision = revision
            else:
                self._plan_next_check(now)
        except (KeyConfigurationError, OSError):
            logger.exception("could not reload the signing keys; keeping the ones in use")
            self._last_check = self._monotonic()
            self._next_check = self._last_check + self._interval
        finally:
            self._lock.release()
