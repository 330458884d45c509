"""The lifecycle of a signing key, `staged` -> `active` -> `retired`, kept the same way by both
key stores (the directory and the database).

A key is **staged** (published in the JWKS, not signing) until `activates_at`, then **active**
(the one key that signs) until `retires_at`, then **retired** (published, so the tokens it
signed still verify) until `publish_until`, then gone. The times decide: every process works
out each key's state from them and its own clock, so all replicas switch to a staged key at
the same moment without anyone writing anything then. The stored state is the state as of the
last write, for people and SQL; writers bring it up to date (`KeySchedule.settled`), and they
drop the private half of a key once it is retired.

Everything here is pure: the stores read a `KeySchedule`, apply an operation (`rotated`,
`retired`, `settled`) and write the result back under their own lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from app.security.keys.errors import KeyConfigurationError, KeyLifecycleError
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SigningKey

# "Since ever": when a key configured, or written by a version that kept no times, took effect.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# A retired key stays published this long beyond the access-token lifetime: the verifiers'
# leeway on `exp` (30 s in the service and the kit) plus clock skew between hosts.
RETIREMENT_MARGIN_SECONDS: Final = 60


class KeyState(StrEnum):
    STAGED = "staged"
    ACTIVE = "active"
    RETIRED = "retired"


def retirement_period(access_token_ttl_seconds: int) -> timedelta:
    """How long a retired key stays published: until the last token it signed has expired
    (`access_token_ttl_seconds` after it stopped signing), plus `RETIREMENT_MARGIN_SECONDS`."""
    return timedelta(seconds=access_token_ttl_seconds + RETIREMENT_MARGIN_SECONDS)


def aware(now: datetime | None) -> datetime:
    """`now`, or the current UTC time; a naive `now` is a `ValueError`."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (UTC)")
    return now


def state_at(
    now: datetime,
    activates_at: datetime,
    retires_at: datetime | None,
    publish_until: datetime | None,
) -> KeyState | None:
    """The state at `now` of a key with this schedule; None once it is no longer published."""
    if retires_at is not None and now >= retires_at:
        if publish_until is not None and now >= publish_until:
            return None
        return KeyState.RETIRED
    if now >= activates_at:
        return KeyState.ACTIVE
    return KeyState.STAGED


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key of a ring and its schedule.

    `key` carries its private half while the key is staged or active (when loaded for
    signing); `stored_state` is what the store last wrote (None: not stored yet).
    """

    key: SigningKey
    activates_at: datetime
    retires_at: datetime | None = None
    publish_until: datetime | None = None
    created_at: datetime | None = None
    stored_state: KeyState | None = None

    @property
    def kid(self) -> str:
        return self.key.kid

    def state_at(self, now: datetime) -> KeyState | None:
        """The key's state at `now`; None once it is no longer published."""
        return state_at(now, self.activates_at, self.retires_at, self.publish_until)

    def times(self) -> Iterable[datetime]:
        """The moments this key changes state."""
        return (t for t in (self.activates_at, self.retires_at, self.publish_until) if t)

    def public(self) -> KeyEntry:
        """This entry without the private half of its key."""
        if self.key.private_key is None:
            return self
        return replace(self, key=replace(self.key, private_key=None))

    def published_key(self, state: KeyState) -> SigningKey:
        """The key as the ring publishes it when not signing: public half only; a retired
        key says until when."""
        publish_until = self.publish_until if state is KeyState.RETIRED else None
        return replace(self.key, private_key=None, publish_until=publish_until)


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What a rotation did: `current` is the new key, which signs from `activates_at` (at once
    for `--now`); `retired` is the key it replaces (public half), which signs until then and
    stays published until `publish_until`."""

    current: SigningKey
    activates_at: datetime
    retired: SigningKey
    publish_until: datetime


@dataclass(frozen=True, slots=True)
class KeySchedule:
    """Every key of a ring with its schedule, newest (latest `activates_at`) first. Immutable:
    the operations return a new schedule."""

    entries: tuple[KeyEntry, ...]

    def __post_init__(self) -> None:
        kids = [entry.kid for entry in self.entries]
        if len(set(kids)) != len(kids):
            raise KeyConfigurationError("the key ring names one key twice")
        ordered = sorted(self.entries, key=lambda entry: entry.activates_at, reverse=True)
        object.__setattr__(self, "entries", tuple(ordered))

    @classmethod
    def first(cls, key: SigningKey, now: datetime) -> KeySchedule:
        """A new ring whose one key is active from `now`."""
        return cls((KeyEntry(key, now, created_at=now, stored_state=KeyState.ACTIVE),))

    @classmethod
    def of_ring(cls, ring: KeyRing) -> KeySchedule:
        """The schedule of a ring with no schedule of its own (a configured key): its signing
        key active since ever, the others retired, published until their `publish_until`."""
        entries = [KeyEntry(ring.signing_key, EPOCH, stored_state=KeyState.ACTIVE)]
        entries += [
            KeyEntry(key, EPOCH, EPOCH, key.publish_until, stored_state=KeyState.RETIRED)
            for key in ring.previous_keys
        ]
        return cls(tuple(entries))

    def entry(self, kid: str) -> KeyEntry | None:
        return next((entry for entry in self.entries if entry.kid == kid), None)

    def in_state(self, state: KeyState, now: datetime) -> list[KeyEntry]:
        """The entries in `state` at `now`, newest first."""
        return [entry for entry in self.entries if entry.state_at(now) is state]

    def signing_entry_at(self, now: datetime) -> KeyEntry:
        """The active key at `now` (the newest one, should a hand-edited ring hold several)."""
        active = self.in_state(KeyState.ACTIVE, now)
        if not active:
            raise KeyConfigurationError(
                "the key ring has no active key: run `authsvc keys rotate --now`"
            )
        return active[0]

    def ring_at(self, now: datetime, extra_keys: Sequence[SigningKey] = ()) -> KeyRing:
        """The keys to sign and verify with at `now`: the active key signs; staged and retired
        keys (and `extra_keys`, configured ones) are published and verify."""
        signer = self.signing_entry_at(now)
        if signer.key.private_key is None:
            raise KeyConfigurationError(f"the active key {signer.kid} has no private key")
        published = []
        for entry in self.entries:
            state = entry.state_at(now)
            if entry is not signer and state is not None:
                published.append(entry.published_key(state))
        return KeyRing(replace(signer.key, publish_until=None), [*published, *extra_keys])

    def next_change_after(self, now: datetime) -> datetime | None:
        """The first moment after `now` at which a key changes state, if any."""
        return min((t for entry in self.entries for t in entry.times() if t > now), default=None)

    def is_settled(self, now: datetime) -> bool:
        """Whether every stored state is the state at `now` (and every key still published)."""
        return all(entry.stored_state is entry.state_at(now) for entry in self.entries)

    def settled(self, now: datetime) -> KeySchedule:
        """The schedule to store at `now`: keys no longer published left out, stored states
        brought up to date, and retired keys without their private half."""
        entries = []
        for entry in self.entries:
            state = entry.state_at(now)
            if state is None:
                continue
            if state is KeyState.RETIRED:
                entry = entry.public()
            entries.append(replace(entry, stored_state=state))
        return KeySchedule(tuple(entries))

    def rotated(
        self,
        key: SigningKey,
        *,
        now: datetime,
        activate_after: timedelta,
        retire_for: timedelta,
    ) -> tuple[KeySchedule, KeyRotation]:
        """Stage `key` to sign from `now + activate_after`; the active key retires then and
        stays published for `retire_for`.

        With `activate_after` zero (a compromised key) `key` signs at once, and a key still
        staged is withdrawn (it never signed). Otherwise a key already staged is a
        `KeyLifecycleError`: one rotation at a time.
        """
        if activate_after < timedelta(0) or retire_for < timedelta(0):
            raise ValueError("activate_after and retire_for must not be negative")
        signer = self.signing_entry_at(now)
        staged = self.in_state(KeyState.STAGED, now)
        if staged and activate_after:
            pending = staged[0]
            raise KeyLifecycleError(
                f"key {pending.kid} is already staged and signs from "
                f"{_utc_text(pending.activates_at)}; `authsvc keys rotate --now` replaces it "
                f"with a new key at once, `authsvc keys retire {pending.kid}` cancels it"
            )
        activates_at = now + activate_after
        publish_until = activates_at + retire_for
        entries = []
        for entry in self.entries:
            state = entry.state_at(now)
            if state is KeyState.ACTIVE:
                entry = replace(entry, retires_at=activates_at, publish_until=publish_until)
            elif state is KeyState.STAGED:
                entry = replace(entry, retires_at=now, publish_until=now)
            entries.append(entry)
        new = KeyEntry(key, activates_at, created_at=now)
        rotation = KeyRotation(key, activates_at, signer.key.retired(publish_until), publish_until)
        return KeySchedule((new, *entries)).settled(now), rotation

    def retired(self, kid: str, *, now: datetime) -> tuple[KeySchedule, KeyEntry]:
        """Stop publishing the key `kid` at once: tokens it signed stop verifying. A staged key
        is withdrawn (the active key keeps signing); the active key cannot be retired (rotate
        with `--now` first). Returns the new schedule and the entry as it was."""
        entry = self.entry(kid)
        state = entry.state_at(now) if entry is not None else None
        if entry is None or state is None:
            raise KeyLifecycleError(f"the key ring publishes no key {kid}")
        if entry is self.signing_entry_at(now):
            raise KeyLifecycleError(
                f"key {kid} signs tokens; make a new key sign first with "
                f"`authsvc keys rotate --now`, then retire {kid}"
            )
        entries = []
        for other in self.entries:
            if other is entry:
                other = replace(
                    other, retires_at=min(other.retires_at or now, now), publish_until=now
                )
            elif state is KeyState.STAGED and other.retires_at == entry.activates_at:
                # The key the withdrawn one would have replaced keeps signing.
                other = replace(other, retires_at=None, publish_until=None)
            entries.append(other)
        return KeySchedule(tuple(entries)).settled(now), entry


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
