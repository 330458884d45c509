"""The key ring on disk (`AUTH_KEYS_DIR`, `AUTH_KEY_STORE=directory`): generating, rotating,
retiring and loading it, safely while other replicas and the CLI read and write the same
directory."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization

from app.security.keys.errors import (
    KeyConfigurationError,
    KeyRingExistsError,
    KeyRingNotFoundError,
)
from app.security.keys.lifecycle import (
    KeyEntry,
    KeyRotation,
    KeySchedule,
    KeyState,
    aware,
    state_at,
)
from app.security.keys.manifest import Manifest, ManifestEntry
from app.security.keys.pem import load_private_key_pem, load_public_keys_pem
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import Algorithm, SigningKey

logger = logging.getLogger(__name__)

MANIFEST_NAME: Final = "keys.json"
_LOCK_NAME: Final = ".lock"


class KeyDirectory:
    """The key ring on disk, shared by replicas through a volume.

    Layout: `keys.json` (the manifest: every key with its state and schedule, see
    `manifest`) and one PEM file per key, `<kid>.pem`; a staged or active key's file holds its
    private key, a retired key's only its public key. Files are 0600 in a 0700 directory.
    Every file is replaced atomically (temp file + `os.replace`), and writers hold an
    exclusive `flock`, so readers never see a half-written ring and concurrent writers never
    lose each other's changes.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    def exists(self) -> bool:
        """Whether the directory holds a key ring."""
        return self.manifest_path.is_file()

    def revision(self) -> bytes | None:
        """An opaque value that changes whenever the ring on disk changes (None: no ring)."""
        try:
            return self.manifest_path.read_bytes()
        except FileNotFoundError:
            return None

    def generate(
        self, algorithm: Algorithm, *, force: bool = False, now: datetime | None = None
    ) -> SigningKey:
        """Create a ring with one new, active key and return it.

        Refuses (`KeyRingExistsError`) if a ring exists, unless `force`: then the old keys
        are deleted and every token they signed stops verifying.
        """
        now = aware(now)
        with self._locked():
            if self.manifest_path.exists() and not force:
                raise KeyRingExistsError(f"a key ring already exists in {self.path}")
            key = SigningKey.generate(algorithm)
            self._write_key_file(key)
            self._write_schedule(KeySchedule.first(key, now))
            self._delete_unlisted_key_files({key.kid})
        return key

    def rotate(
        self,
        algorithm: Algorithm,
        retire_for_seconds: float,
        *,
        activate_after_seconds: float = 0.0,
        now: datetime | None = None,
    ) -> KeyRotation:
        """Stage a new key that signs `activate_after_seconds` from now (0: at once); the key
        it replaces stays published for `retire_for_seconds` after that.

        Pass the access-token lifetime plus a clock-skew margin as `retire_for_seconds`
        (`lifecycle.retirement_period`), so every token the old key signed expires before the
        key disappears from the JWKS; and `AUTH_KEY_PUBLISH_AHEAD_SECONDS` as
        `activate_after_seconds`, so verifiers know the new key before it signs.
        """
        now = aware(now)
        with self._locked():
            schedule = self._read_schedule(self._read_manifest(), now, private=False)
            key = SigningKey.generate(algorithm)
            rotated, rotation = schedule.rotated(
                key,
                now=now,
                activate_after=timedelta(seconds=activate_after_seconds),
                retire_for=timedelta(seconds=retire_for_seconds),
            )
            # The new key's file exists before the manifest names it; a retired key loses its
            # private half only after the manifest calls it retired.
            self._write_key_file(key)
            self._write_schedule(rotated)
        return rotation

    def retire(self, kid: str, *, now: datetime | None = None) -> KeyEntry:
        """Stop publishing `kid` at once (see `KeySchedule.retired`); its file is deleted."""
        now = aware(now)
        with self._locked():
            schedule = self._read_schedule(self._read_manifest(), now, private=False)
            retired, entry = schedule.retired(kid, now=now)
            self._write_schedule(retired)
        return entry

    def load_schedule(self, now: datetime | None = None, *, private: bool = True) -> KeySchedule:
        """The ring with its schedule, staged and active keys with their private halves
        (unless not `private`). When a key's state is due to change, or a retired key's
        publication has ended, the directory is brought up to date too (if it is writable)."""
        now = aware(now)
        # Writers replace files while replicas read; a read that fails while the manifest
        # changed under it is retried against the new manifest.
        for _attempt in range(3):
            raw = self._read_manifest_bytes()
            try:
                manifest = Manifest.from_bytes(raw, path=self.manifest_path)
                schedule = self._read_schedule(manifest, now, private=private)
            except KeyConfigurationError:
                if self.revision() != raw:
                    continue
                raise
            if not schedule.is_settled(now):
                self._settle(now)
            return schedule
        raise KeyConfigurationError(f"the key ring in {self.path} kept changing while read")

    def load(self, now: datetime | None = None) -> KeyRing:
        """The ring as of `now`: the active key signs; staged and retired keys still
        published verify (retired keys past `publish_until` are left out, and their files
        deleted when the directory is writable)."""
        now = aware(now)
        return self.load_schedule(now).ring_at(now)

    # --- internals ---

    def _read_schedule(self, manifest: Manifest, now: datetime, *, private: bool) -> KeySchedule:
        entries = []
        for item in manifest.entries:
            state = state_at(now, item.activates_at, item.retires_at, item.publish_until)
            # Only a key that signs now or later needs its private half.
            signs = private and state in (KeyState.STAGED, KeyState.ACTIVE)
            entries.append(
                KeyEntry(
                    self._read_key(item, private=signs),
                    item.activates_at,
                    item.retires_at,
                    item.publish_until,
                    item.created_at,
                    item.state,
                )
            )
        return KeySchedule(tuple(entries))

    def _settle(self, now: datetime) -> None:
        try:
            with self._locked():
                schedule = self._read_schedule(self._read_manifest(), now, private=False)
                if not schedule.is_settled(now):
                    self._write_schedule(schedule.settled(now))
        except (OSError, KeyConfigurationError) as exc:
            # A read-only mount is fine: some writer (or the CLI) settles later.
            logger.debug("could not update the key ring in %s: %s", self.path, exc)

    def _write_schedule(self, schedule: KeySchedule) -> None:
        """Write the manifest of `schedule` (settled: its stored states are current), then
        strip retired keys' files to their public half and delete files no key names."""
        manifest = Manifest.of([_manifest_entry(entry) for entry in schedule.entries])
        _write_atomically(self.manifest_path, manifest.to_bytes())
        for entry in schedule.entries:
            if entry.stored_state is KeyState.RETIRED and self._holds_private_key(entry.kid):
                self._write_key_file(entry.public().key)
        self._delete_unlisted_key_files({entry.kid for entry in schedule.entries})

    def _holds_private_key(self, kid: str) -> bool:
        try:
            return b"PRIVATE KEY" in self._key_path(kid).read_bytes()
        except FileNotFoundError:
            return False

    def _read_manifest_bytes(self) -> bytes:
        try:
            return self.manifest_path.read_bytes()
        except FileNotFoundError:
            raise KeyRingNotFoundError(
                f"no key ring in {self.path}: run `authsvc keys generate`"
            ) from None
        except OSError as exc:
            raise KeyConfigurationError(f"cannot read {self.manifest_path}: {exc}") from exc

    def _read_manifest(self) -> Manifest:
        return Manifest.from_bytes(self._read_manifest_bytes(), path=self.manifest_path)

    def _key_path(self, kid: str) -> Path:
        return self.path / f"{kid}.pem"

    def _read_key(self, entry: ManifestEntry, *, private: bool) -> SigningKey:
        path = self._key_path(entry.kid)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyConfigurationError(f"cannot read key file {path}: {exc.strerror}") from exc
        if b"PRIVATE KEY" in pem:
            private_key = load_private_key_pem(pem, source=str(path))
            key = SigningKey.from_private_key(private_key, algorithm=entry.algorithm)
        elif private:
            raise KeyConfigurationError(f"{path} holds no private key for a {entry.state} key")
        else:
            public_keys = load_public_keys_pem(pem.decode("utf-8", "replace"), source=str(path))
            if len(public_keys) != 1:
                raise KeyConfigurationError(f"{path} does not hold exactly one public key")
            key = SigningKey.from_public_key(public_keys[0], algorithm=entry.algorithm)
        if not private:
            # A key read to verify only (a retired one) never signs, whatever its file holds.
            key = replace(key, private_key=None)
        if key.kid != entry.kid:
            raise KeyConfigurationError(f"{path} does not hold the key {entry.kid}")
        return key

    def _write_key_file(self, key: SigningKey) -> None:
        if key.private_key is not None:
            pem = key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            pem = key.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        _write_atomically(self._key_path(key.kid), pem)

    def _delete_unlisted_key_files(self, listed: set[str]) -> None:
        for path in self.path.glob("*.pem"):
            if path.stem not in listed:
                with suppress(FileNotFoundError):
                    path.unlink()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Tighten a directory someone else created (a volume mount point, say), if ours.
        with suppress(PermissionError):
            self.path.chmod(0o700)
        descriptor = os.open(self.path / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock


def _manifest_entry(entry: KeyEntry) -> ManifestEntry:
    if entry.stored_state is None:
        raise ValueError("only a settled schedule is written")
    return ManifestEntry(
        entry.kid,
        entry.key.algorithm,
        entry.stored_state,
        entry.activates_at,
        entry.retires_at,
        entry.publish_until,
        entry.created_at,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (mode 0600) so that readers see the old or the new file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
