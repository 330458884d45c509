"""Encryption at rest with Fernet keys, for secrets the service must read back.

Two settings hold such keys, each a Fernet key (url-safe base64 of 32 bytes) or a
comma-separated list of them: the first encrypts, every one decrypts, so a key is rotated by
putting the new one first, re-encrypting (or letting old rows expire), then dropping the old.

- `AUTH_DATA_ENCRYPTION_KEY`: data secrets (queued mail carrying one-time links, TOTP secrets,
  webhook secrets).
- `AUTH_KEY_ENCRYPTION_KEY`: the private signing keys kept in the database.

In production both must be set. In development a missing key is generated once into
`AUTH_KEYS_DIR` (the file appears whole or not at all, so processes starting together agree on
one key) and read from there afterwards.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from app.config import Settings
from app.security.keys.errors import KeyConfigurationError

logger = logging.getLogger(__name__)


class DecryptionFailed(Exception):
    """The ciphertext was made under none of the configured keys, or was altered."""


@dataclass(frozen=True, slots=True)
class EncryptionKeySetting:
    """Where one encryption key comes from: its setting's name and value, and the file in
    `AUTH_KEYS_DIR` that holds it in development."""

    name: str
    value: SecretStr | None
    file_name: str


def data_encryption_setting(settings: Settings) -> EncryptionKeySetting:
    return EncryptionKeySetting(
        "AUTH_DATA_ENCRYPTION_KEY", settings.data_encryption_key, "data-encryption.key"
    )


def key_encryption_setting(settings: Settings) -> EncryptionKeySetting:
    return EncryptionKeySetting(
        "AUTH_KEY_ENCRYPTION_KEY", settings.key_encryption_key, "key-encryption.key"
    )


class Encryptor:
    """Encrypts with the first key, decrypts with any (authenticated: altered data fails)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        fernets = [Fernet(key) for key in keys]
        self._first = fernets[0]
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken:
            raise DecryptionFailed from None

    def rotate(self, ciphertext: bytes) -> bytes:
        """`ciphertext` re-encrypted under the first key (for re-encrypting after a rotation)."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken:
            raise DecryptionFailed from None

    def reencrypt(self, ciphertext: bytes) -> bytes | None:
        """`ciphertext` re-encrypted under the first key, or None when the first key already
        decrypts it (nothing to do, so running a re-encryption again changes nothing);
        `DecryptionFailed` when no key does."""
        try:
            self._first.decrypt(ciphertext)
        except InvalidToken:
            return self.rotate(ciphertext)
        return None


def parse_keys(text: str, name: str) -> list[bytes]:
    """The Fernet keys in `text` (comma-separated), or `KeyConfigurationError` naming the
    setting (never echoing the value)."""
    keys = [part.strip().encode() for part in text.split(",") if part.strip()]
    if not keys:
        raise KeyConfigurationError(f"{name} holds no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise KeyConfigurationError(
                f"{name}: key {position} is not a Fernet key (url-safe base64 of 32 bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return keys


def _create_key_file(path: Path) -> bool:
    """Write a new Fernet key to `path` unless one is there; True if this call created it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(Fernet.generate_key() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temporary)


def load_encryptor(settings: Settings, setting: EncryptionKeySetting) -> Encryptor:
    """The encryptor for `setting`: its configured keys, else (development) the key file in
    `AUTH_KEYS_DIR`, created first when `settings.may_generate_keys`; else
    `KeyConfigurationError`."""
    if setting.value is not None:
        return Encryptor(parse_keys(setting.value.get_secret_value(), setting.name))
    path = settings.keys_dir / setting.file_name
    if not path.exists() and settings.may_generate_keys:
        try:
            if _create_key_file(path):
                logger.info("generated %s in %s", setting.name, path)
        except OSError as exc:
            raise KeyConfigurationError(f"cannot create {path}: {exc}") from exc
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KeyConfigurationError(
            f"no {setting.name}: set it (no {setting.file_name} in "
            f"AUTH_KEYS_DIR={settings.keys_dir})"
        ) from None
    except OSError as exc:
        raise KeyConfigurationError(f"cannot read {path}: {exc}") from exc
    return Encryptor(parse_keys(text, str(path)))
