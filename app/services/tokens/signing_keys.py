"""The signing keys of access tokens: the key ring in the database (`AUTH_KEY_STORE=database`),
and the ring the service signs with, whichever store holds it.

- `DatabaseKeyStore`: the use cases over the `signing_keys` table (read, generate, rotate,
  retire, import, settle), each write one transaction under the ring's lock, with the same
  lifecycle as the key directory (`app/security/keys/lifecycle.py`). Private keys are
  encrypted under `AUTH_KEY_ENCRYPTION_KEY` before they reach the database and decrypted only
  here; a retired key keeps its public half alone.
- `SigningKeys`: what the runtime holds. `start()` reads the ring at start-up; for the
  database store it then watches the ring's revision in the background and hands every new
  schedule to the `KeyRingProvider`, which switches keys at their scheduled times by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import StoredSigningKey
from app.repositories import SigningKeyRepository
from app.security.encryption import (
    DecryptionFailed,
    Encryptor,
    key_encryption_setting,
    load_encryptor,
)
from app.security.keys.errors import (
    KeyConfigurationError,
    KeyLifecycleError,
    KeyRingExistsError,
    KeyRingNotFoundError,
)
from app.security.keys.lifecycle import KeyEntry, KeyRotation, KeySchedule, KeyState
from app.security.keys.loading import configured_previous_keys, warn_of_algorithm_mismatch
from app.security.keys.pem import load_private_key_pem, load_public_keys_pem
from app.security.keys.provider import KeyRingProvider
from app.security.keys.signing_key import SUPPORTED_ALGORITHMS, Algorithm, SigningKey
from app.services.common.unit_of_work import unit_of_work

logger = logging.getLogger(__name__)

T = TypeVar("T")
NO_RING = "no key ring in the database: run `authsvc keys generate` (or `authsvc keys import`)"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ImportOutcome(StrEnum):
    IMPORTED = "imported"
    ALREADY_IMPORTED = "already imported"


class DatabaseKeyStore:
    """The key ring in the database, over one session. `encryptor` (of
    `AUTH_KEY_ENCRYPTION_KEY`) is needed to read private keys and to store new ones; without
    it, only public halves are read."""

    def __init__(self, session: AsyncSession, encryptor: Encryptor | None) -> None:
        self.session = session
        self.keys = SigningKeyRepository(session)
        self.encryptor = encryptor

    # --- reading ---

    async def revision(self) -> int | None:
        """The ring's revision, which every write changes (None: never written)."""
        async with unit_of_work(self.session):
            return await self.keys.revision()

    async def load(
        self, now: datetime, *, private: bool = True
    ) -> tuple[int | None, KeySchedule | None]:
        """The ring's revision and schedule (None: no keys), staged and active keys with
        their private halves decrypted unless not `private`. `KeyConfigurationError` if a
        private key does not decrypt under `AUTH_KEY_ENCRYPTION_KEY`, or a stored key does
        not match its kid."""
        async with unit_of_work(self.session):
            # Revision first: rows read after it are at least as new, so a change committed
            # in between is only read twice, never missed.
            revision = await self.keys.revision()
            records = await self.keys.ring()
        if not records:
            return revision, None
        return revision, self._schedule_of(records, now, private=private)

    # --- writing (each one transaction under the ring's lock) ---

    async def generate(
        self, algorithm: Algorithm, *, now: datetime, force: bool = False
    ) -> SigningKey:
        """Create the ring with one new, active key. `KeyRingExistsError` if there is one,
        unless `force`: then its keys are deleted and every token they signed stops
        verifying."""

        key = SigningKey.generate(algorithm)  # before the lock: RSA takes a while

        def first(schedule: KeySchedule | None) -> tuple[KeySchedule, SigningKey]:
            if schedule is not None and not force:
                raise KeyRingExistsError("a key ring already exists in the database")
            return KeySchedule.first(key, now), key

        return await self._change(now, first, checks_encryption_key=False)

    async def generate_if_missing(
        self, algorithm: Algorithm, *, now: datetime
    ) -> SigningKey | None:
        """Create the ring with one new key unless there is one (processes starting together
        create one ring between them); the key, or None if a ring was there."""
        try:
            return await self.generate(algorithm, now=now)
        except KeyRingExistsError:
            return None

    async def rotate(
        self,
        algorithm: Algorithm,
        *,
        now: datetime,
        activate_after: timedelta,
        retire_for: timedelta,
    ) -> KeyRotation:
        """Stage a new key (see `KeySchedule.rotated`)."""

        key = SigningKey.generate(algorithm)  # before the lock: RSA takes a while

        def rotated(schedule: KeySchedule | None) -> tuple[KeySchedule, KeyRotation]:
            if schedule is None:
                raise KeyRingNotFoundError(NO_RING)
            return schedule.rotated(
                key, now=now, activate_after=activate_after, retire_for=retire_for
            )

        return await self._change(now, rotated)

    async def retire(self, kid: str, *, now: datetime) -> KeyEntry:
        """Stop publishing `kid` at once (see `KeySchedule.retired`)."""

        def retired(schedule: KeySchedule | None) -> tuple[KeySchedule, KeyEntry]:
            if schedule is None:
                raise KeyRingNotFoundError(NO_RING)
            return schedule.retired(kid, now=now)

        return await self._change(now, retired, checks_encryption_key=False)

    async def import_ring(self, schedule: KeySchedule, *, now: datetime) -> ImportOutcome:
        """Copy `schedule` (a key directory's ring, staged and active keys with their private
        halves) into the database, states and times as they are. Idempotent: importing the
        same ring again changes nothing; a database holding other keys is refused
        (`KeyLifecycleError`), never merged or overwritten."""
        incoming = schedule.settled(now)
        for entry in incoming.in_state(KeyState.STAGED, now) + incoming.in_state(
            KeyState.ACTIVE, now
        ):
            if entry.key.private_key is None:
                raise KeyConfigurationError(
                    f"the {entry.stored_state} key {entry.kid} has no private half"
                )

        def imported(stored: KeySchedule | None) -> tuple[KeySchedule, ImportOutcome]:
            if stored is None:
                return incoming, ImportOutcome.IMPORTED
            stored_kids = {entry.kid for entry in stored.settled(now).entries}
            if stored_kids == {entry.kid for entry in incoming.entries}:
                return stored, ImportOutcome.ALREADY_IMPORTED
            raise KeyLifecycleError(
                "the database already holds another key ring "
                f"({', '.join(sorted(stored_kids))}); `keys import` fills an empty key store"
            )

        return await self._change(now, imported)

    async def settle(self, now: datetime) -> bool:
        """Bring the stored states up to `now`, drop the private halves of retired keys and
        the rows of keys no longer published; True if anything changed."""

        def settled(schedule: KeySchedule | None) -> tuple[KeySchedule | None, bool]:
            if schedule is None or schedule.is_settled(now):
                return schedule, False
            return schedule.settled(now), True

        return await self._change(now, settled, checks_encryption_key=False)

    async def _change(
        self,
        now: datetime,
        change: Callable[[KeySchedule | None], tuple[KeySchedule | None, T]],
        *,
        checks_encryption_key: bool = True,
    ) -> T:
        async with unit_of_work(self.session):
            await self.keys.lock_ring()
            records = await self.keys.ring()
            if checks_encryption_key:
                # A key stored under another key than the one the replicas decrypt with would
                # leave them without a key to sign with once it activates.
                self._check_encryption_key(records)
            schedule = self._schedule_of(records, now, private=False) if records else None
            changed, result = change(schedule)
            if changed is not None and changed is not schedule:
                await self._store(records, changed, now)
            return result

    async def _store(
        self, records: list[StoredSigningKey], schedule: KeySchedule, now: datetime
    ) -> None:
        """Make the rows match `schedule` (settled), and bump the revision if any changed."""
        by_kid = {record.kid: record for record in records}
        changed = False
        for entry in schedule.entries:
            if entry.stored_state is None:
                raise ValueError("only a settled schedule is stored")
            values: dict[str, object] = {
                "state": entry.stored_state.value,
                "activates_at": entry.activates_at,
                "retires_at": entry.retires_at,
                "publish_until": entry.publish_until,
            }
            record = by_kid.pop(entry.kid, None)
            if record is None:
                await self.keys.create(
                    kid=entry.kid,
                    algorithm=entry.key.algorithm,
                    public_key_pem=_public_pem(entry.key),
                    encrypted_private_key=self._sealed_private_key(entry),
                    created_at=entry.created_at or now,
                    **values,
                )
                changed = True
                continue
            if entry.stored_state is KeyState.RETIRED:
                values["encrypted_private_key"] = None
            if any(getattr(record, name) != value for name, value in values.items()):
                await self.keys.update(record, **values)
                changed = True
        for record in by_kid.values():
            await self.keys.delete(record.id)
            changed = True
        if changed:
            await self.keys.bump_revision()

    # --- between rows and keys ---

    def _sealed_private_key(self, entry: KeyEntry) -> str | None:
        if entry.stored_state is KeyState.RETIRED or entry.key.private_key is None:
            return None
        if self.encryptor is None:
            raise KeyConfigurationError("storing a private key needs AUTH_KEY_ENCRYPTION_KEY")
        pem = entry.key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return self.encryptor.encrypt(pem).decode("ascii")

    def _private_key(self, record: StoredSigningKey) -> SigningKey:
        if record.encrypted_private_key is None:
            raise KeyConfigurationError(
                f"the {record.state} signing key {record.kid} has no private key in the database"
            )
        if self.encryptor is None:
            raise KeyConfigurationError("reading private keys needs AUTH_KEY_ENCRYPTION_KEY")
        try:
            pem = self.encryptor.decrypt(record.encrypted_private_key.encode("ascii"))
        except (DecryptionFailed, UnicodeEncodeError):
            raise KeyConfigurationError(
                f"cannot decrypt the private key of signing key {record.kid}: "
                "AUTH_KEY_ENCRYPTION_KEY is not the key it was encrypted with "
                "(or the row was altered)"
            ) from None
        key = SigningKey.from_private_key(
            load_private_key_pem(pem, source=f"signing key {record.kid}"),
            algorithm=_algorithm(record),
        )
        if key.kid != record.kid:
            # A ciphertext moved from another row: it decrypts, but it is not this key.
            raise KeyConfigurationError(f"the private key stored for {record.kid} is another key")
        return key

    def _public_key(self, record: StoredSigningKey) -> SigningKey:
        source = f"signing key {record.kid}"
        public_keys = load_public_keys_pem(record.public_key_pem, source=source)
        if len(public_keys) != 1:
            raise KeyConfigurationError(f"{source} does not hold exactly one public key")
        key = SigningKey.from_public_key(public_keys[0], algorithm=_algorithm(record))
        if key.kid != record.kid:
            raise KeyConfigurationError(f"{source}: the public key stored is another key")
        return key

    def _schedule_of(
        self, records: list[StoredSigningKey], now: datetime, *, private: bool
    ) -> KeySchedule:
        entries = []
        for record in records:
            entry = KeyEntry(
                self._public_key(record),
                record.activates_at,
                record.retires_at,
                record.publish_until,
                record.created_at,
                KeyState(record.state),
            )
            if private and entry.state_at(now) in (KeyState.STAGED, KeyState.ACTIVE):
                entry = KeyEntry(
                    self._private_key(record),
                    entry.activates_at,
                    entry.retires_at,
                    entry.publish_until,
                    entry.created_at,
                    entry.stored_state,
                )
            entries.append(entry)
        return KeySchedule(tuple(entries))

    def _check_encryption_key(self, records: list[StoredSigningKey]) -> None:
        sealed = [record for record in records if record.encrypted_private_key is not None]
        if sealed:
            self._private_key(sealed[0])


def _algorithm(record: StoredSigningKey) -> Algorithm:
    for algorithm in SUPPORTED_ALGORITHMS:
        if record.algorithm == algorithm:
            return algorithm
    raise KeyConfigurationError(f"signing key {record.kid}: unknown algorithm {record.algorithm!r}")


def _public_pem(key: SigningKey) -> str:
    return key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class SigningKeys:
    """The key ring the service signs with, from the store the settings name, kept current.

    Built with the runtime, reading nothing: the command line never signs. `start()` reads
    the ring at start-up (a missing or undecryptable ring stops the start); `provider()` is
    what the token codec signs and verifies with. With the database store, `start()` also
    starts a task that every `AUTH_KEY_CHECK_INTERVAL_SECONDS` compares the ring's revision,
    reloads it when it moved, and settles states that are due (the first replica to notice
    does it; the others find nothing left to do). `close()` stops that task.
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self._session_factory = session_factory
        self._clock = clock
        self._provider: KeyRingProvider | None = None
        self._encryptor: Encryptor | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._nudge: asyncio.Event | None = None

    @property
    def uses_database(self) -> bool:
        """Whether the ring comes from the database (a configured key always wins)."""
        settings = self.settings
        return settings.key_store == "database" and not settings.has_configured_signing_key

    def provider(self) -> KeyRingProvider:
        """The provider of the ring in use. The directory store's is built on first use; the
        database store's exists once `start()` has read the ring."""
        if self._provider is None:
            if self.uses_database:
                raise RuntimeError("the signing keys in the database are read by `start()`")
            self._provider = KeyRingProvider.from_settings(self.settings)
        return self._provider

    async def start(self) -> None:
        """Read the ring (and, from the database, start watching it); `KeyConfigurationError`
        if there is none to sign with or it cannot be read."""
        if self._provider is not None:
            return
        if not self.uses_database:
            self.provider()
            return
        settings = self.settings
        self._encryptor = load_encryptor(settings, key_encryption_setting(settings))
        now = self._clock()
        revision, schedule = await self._load(now)
        if schedule is None:
            if not settings.may_generate_keys:
                raise KeyRingNotFoundError(NO_RING)
            async with self._session_factory() as session:
                key = await DatabaseKeyStore(session, self._encryptor).generate_if_missing(
                    settings.jwt_algorithm, now=now
                )
            if key is not None:
                logger.info("generated a %s signing key %s in the database", key.algorithm, key.kid)
            revision, schedule = await self._load(now)
            if schedule is None:
                raise KeyRingNotFoundError(NO_RING)
        self._nudge = asyncio.Event()
        self._provider = KeyRingProvider(
            schedule=schedule,
            installed_revision=revision,
            extra_keys=configured_previous_keys(settings),
            on_unknown_kid=self._nudge.set,
            check_interval_seconds=settings.key_check_interval_seconds,
            clock=self._clock,
        )
        warn_of_algorithm_mismatch(settings, self._provider.current(), "the database")
        self._watcher = asyncio.create_task(self._watch(), name="authsvc signing key watcher")

    async def close(self) -> None:
        """Stop watching the ring (idempotent)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher

    async def check(self) -> None:
        """Reload the ring if its revision moved, and settle states that are due; errors
        propagate (the watcher logs them and keeps the ring in use)."""
        provider = self.provider()
        now = self._clock()
        async with self._session_factory() as session:
            store = DatabaseKeyStore(session, self._encryptor)
            if await store.revision() != provider.revision:
                await self._reload(store, now)
            if not provider.schedule.is_settled(now) and await store.settle(now):
                await self._reload(store, now)

    async def _reload(self, store: DatabaseKeyStore, now: datetime) -> None:
        revision, schedule = await store.load(now)
        if schedule is None:
            raise KeyRingNotFoundError(NO_RING)
        self.provider().install(schedule, revision)

    async def _load(self, now: datetime) -> tuple[int | None, KeySchedule | None]:
        async with self._session_factory() as session:
            return await DatabaseKeyStore(session, self._encryptor).load(now)

    async def _watch(self) -> None:
        assert self._nudge is not None
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    self._nudge.wait(), timeout=self.settings.key_check_interval_seconds
                )
            self._nudge.clear()
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except KeyConfigurationError as error:
                # A key this process cannot use (encrypted under a key it does not have): it
                # would stop signing when that key activates, so say it loudly, every time.
                logger.error("cannot use the signing keys in the database: %s", error)
            except Exception as error:  # the database may be away for a while
                logger.warning(
                    "could not check the signing keys in the database (%s: %s); "
                    "keeping the ones in use",
                    type(error).__name__,
                    str(error).strip().splitlines()[0] if str(error).strip() else "",
                )
