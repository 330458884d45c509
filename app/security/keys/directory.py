"""The key ring on disk (`AUTH_KEYS_DIR`): generating, rotating and loading it, safely while
other replicas and the CLI read and write the same directory."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization

from app.security.keys.errors import (
    KeyConfigurationError,
    KeyRingExistsError,
    KeyRingNotFoundError,
)
from app.security.keys.manifest import Manifest, ManifestEntry
from app.security.keys.pem import load_private_key_pem, load_public_keys_pem
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import Algorithm, SigningKey

logger = logging.getLogger(__name__)

MANIFEST_NAME: Final = "keys.json"
_LOCK_NAME: Final = ".lock"


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (UTC)")
    return now


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What `KeyDirectory.rotate` did: the new signing key and the key it retired, which is
    published until `publish_until`."""

    current: SigningKey
    retired: SigningKey
    publish_until: datetime


class KeyDirectory:
    """The key ring on disk, shared by replicas through a volume.

    Layout: `keys.json` (the manifest: current kid, retired kids with `publish_until`) and one
    PEM file per key, `<kid>.pem`; the current key's file holds its private key, a retired
    key's only its public key. Files are 0600 in a 0700 directory. Every file is replaced
    atomically (temp file + `os.replace`), and writers hold an exclusive `flock`, so readers
    never see a half-written ring and concurrent writers never lose each other's changes.
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

    def generate(self, algorithm: Algorithm, *, force: bool = False) -> SigningKey:
        """Create a ring with one new key and return it.

        Refuses (`KeyRingExistsError`) if a ring exists, unless `force`: then the old keys
        are deleted and every token they signed stops verifying.
        """
        with self._locked():
            if self.manifest_path.exists() and not force:
                raise KeyRingExistsError(f"a key ring already exists in {self.path}")
            key = SigningKey.generate(algorithm)
            self._write_key_file(key)
            self._write_manifest(Manifest(ManifestEntry(key.kid, key.algorithm)))
            self._delete_unlisted_key_files({key.kid})
        return key

    def rotate(
        self, algorithm: Algorithm, retire_for_seconds: float, *, now: datetime | None = None
    ) -> KeyRotation:
        """Make a new key current; the old one stays published for `retire_for_seconds`.

        Pass the access-token lifetime plus a clock-skew margin, so every token the old key
        signed expires before the key disappears from the JWKS.
        """
        if retire_for_seconds < 0:
            raise ValueError("retire_for_seconds must not be negative")
        now = _aware(now)
        with self._locked():
            manifest = self._read_manifest()
            previous = self._read_key(manifest.current, private=True)
            key = SigningKey.generate(algorithm)
            publish_until = now + timedelta(seconds=retire_for_seconds)
            retired = previous.retired(publish_until)
            entry = ManifestEntry(retired.kid, retired.algorithm, publish_until)
            still_published = [e for e in manifest.retired if e.is_published_at(now)]
            # The new key's file exists before the manifest names it; the old key loses its
            # private half only after the manifest no longer calls it current.
            self._write_key_file(key)
            self._write_manifest(
                Manifest(ManifestEntry(key.kid, key.algorithm), (entry, *still_published))
            )
            self._write_key_file(retired)
            self._delete_unlisted_key_files({key.kid, entry.kid, *(e.kid for e in still_published)})
        return KeyRotation(current=key, retired=retired, publish_until=publish_until)

    def load(self, now: datetime | None = None) -> KeyRing:
        """The ring as of `now`: retired keys past `publish_until` are left out (and their
        files deleted, when the directory is writable)."""
        now = _aware(now)
        # Writers replace files while replicas read; a read that fails while the manifest
        # changed under it is retried against the new manifest.
        for _attempt in range(3):
            raw = self._read_manifest_bytes()
            try:
                manifest = Manifest.from_bytes(raw, path=self.manifest_path)
                ring, expired = self._ring_from(manifest, now)
            except KeyConfigurationError:
                if self.revision() != raw:
                    continue
                raise
            if expired:
                self._prune(now)
            return ring
        raise KeyConfigurationError(f"the key ring in {self.path} kept changing while read")

    # --- internals ---

    def _ring_from(self, manifest: Manifest, now: datetime) -> tuple[KeyRing, bool]:
        signing_key = self._read_key(manifest.current, private=True)
        published = [e for e in manifest.retired if e.is_published_at(now)]
        previous = [self._read_key(entry, private=False) for entry in published]
        return KeyRing(signing_key, previous), len(published) < len(manifest.retired)

    def _prune(self, now: datetime) -> None:
        try:
            with self._locked():
                manifest = self._read_manifest()
                published = tuple(e for e in manifest.retired if e.is_published_at(now))
                if len(published) < len(manifest.retired):
                    self._write_manifest(Manifest(manifest.current, published))
                    self._delete_unlisted_key_files(
                        {manifest.current.kid, *(e.kid for e in published)}
                    )
        except (OSError, KeyConfigurationError) as exc:
            # A read-only mount is fine: some writer (or the CLI) prunes later.
            logger.debug("could not prune retired keys in %s: %s", self.path, exc)

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
            raise KeyConfigurationError(f"{path} holds no private key for the current key")
        else:
            public_keys = load_public_keys_pem(pem.decode("utf-8", "replace"), source=str(path))
            if len(public_keys) != 1:
                raise KeyConfigurationError(f"{path} does not hold exactly one public key")
            key = SigningKey.from_public_key(public_keys[0], algorithm=entry.algorithm)
        if not private:
            # A retired key only verifies, whatever its file still holds.
            key = replace(key, private_key=None, publish_until=entry.publish_until)
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

    def _write_manifest(self, manifest: Manifest) -> None:
        _write_atomically(self.manifest_path, manifest.to_bytes())

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
