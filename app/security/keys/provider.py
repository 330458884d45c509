"""The key ring in use, reloaded when the key directory changes or a retired key's
publication ends."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from app.config import Settings
from app.security.keys.directory import KeyDirectory
from app.security.keys.errors import KeyConfigurationError
from app.security.keys.loading import load_key_ring
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SigningKey

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class KeyRingProvider:
    """Hands out the key ring in use and notices when it changes on disk.

    `current()` sits on every request's path: between checks it costs one clock read. At most
    every `check_interval_seconds` it compares the directory's revision (the manifest) and
    reloads on a change or when a retired key's publication ends. A token naming an unknown
    kid triggers an early check (at most once a second), so a replica verifies tokens of a key
    another replica just started signing with. A failed reload keeps the ring in use.
    """

    RECHECK_ON_UNKNOWN_KID_SECONDS: Final = 1.0

    def __init__(
        self,
        load: Callable[[datetime], KeyRing],
        *,
        revision: Callable[[], object] | None = None,
        check_interval_seconds: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._revision_of = revision or (lambda: None)
        self._interval = check_interval_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._revision = self._revision_of()
        self._ring = load(clock())
        self._last_check = monotonic()
        self._next_check = self._last_check + check_interval_seconds

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        check_interval_seconds: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> KeyRingProvider:
        """Load the ring with `load_key_ring`; watch `AUTH_KEYS_DIR` unless a key is configured."""
        revision = None
        if not settings.has_configured_signing_key:
            revision = KeyDirectory(settings.keys_dir).revision
        return cls(
            lambda now: load_key_ring(settings, now),
            revision=revision,
            check_interval_seconds=check_interval_seconds,
            clock=clock,
            monotonic=monotonic,
        )

    @classmethod
    def fixed(cls, ring: KeyRing, *, clock: Callable[[], datetime] = utcnow) -> KeyRingProvider:
        """A provider of one ring, which only drops retired keys as their publication ends."""
        return cls(ring.published_at, clock=clock)

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
            self._check()
            key = self._ring.verification_key(kid)
        return key

    def reload(self) -> KeyRing:
        """Reload the ring now, whatever the revision says; errors propagate."""
        with self._lock:
            self._revision = self._revision_of()
            self._ring = self._load(self._clock())
            return self._ring

    def _check(self) -> None:
        # A concurrent caller already checking is enough; the others go on with the old ring.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._last_check = self._monotonic()
            self._next_check = self._last_check + self._interval
            now = self._clock()
            expiry = self._ring.next_expiry
            revision = self._revision_of()
            if revision == self._revision and (expiry is None or now < expiry):
                return
            ring = self._load(now)
            self._ring, self._revision = ring, revision
        except (KeyConfigurationError, OSError):
            logger.exception("could not reload the signing keys; keeping the ones in use")
        finally:
            self._lock.release()
