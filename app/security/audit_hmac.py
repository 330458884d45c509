"""Keyed digests of identifiers for the audit trail (HMAC-SHA256).

A failed sign-in is recorded with a digest of the name that was typed, so that repeated
attempts on one name can be told apart from a spray over many without storing the name (or a
password typed into the wrong field). A plain SHA-256 would be reversed by hashing a list of
addresses; keyed, it can only be recomputed by someone holding the key.

The key is `AUTH_AUDIT_HMAC_KEY`, or the file `audit-hmac.key` in `AUTH_KEYS_DIR`: created on
first start in development, and by `authsvc keys audit-key` (the container entrypoint runs it)
elsewhere. Every replica must use the same key. A new key makes new digests that match none of
the old ones: events recorded before a rotation can no longer be linked to those after it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from contextlib import suppress
from pathlib import Path

from app.config import Settings
from app.security.keys.errors import KeyConfigurationError

logger = logging.getLogger(__name__)

AUDIT_KEY_FILE = "audit-hmac.key"
# A generated key is 43 characters (32 random bytes); a configured one must be as long.
MIN_KEY_LENGTH = 32
# 128 bits of the HMAC: collisions between identifiers stay negligible, rows stay short.
DIGEST_HEX_LENGTH = 32


def audit_key_path(settings: Settings) -> Path:
    return settings.keys_dir / AUDIT_KEY_FILE


def create_audit_key_file(path: Path) -> bool:
    """Write a new random key to `path` unless one is there; True if this call created it.

    The file appears whole or not at all (written aside, then hard-linked into place, which
    fails if the name exists), so replicas starting together agree on one key.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temporary)


def load_audit_key(settings: Settings) -> bytes:
    """The audit HMAC key: configured, else kept in `AUTH_KEYS_DIR` (created there first when
    `settings.may_generate_keys`), else `KeyConfigurationError`."""
    if settings.audit_hmac_key is not None:
        # Checked here rather than by the settings: pydantic's errors would echo the value.
        configured = settings.audit_hmac_key.get_secret_value()
        if len(configured) < MIN_KEY_LENGTH:
            raise KeyConfigurationError(
                f"AUTH_AUDIT_HMAC_KEY is too short: {MIN_KEY_LENGTH} characters at least"
            )
        return configured.encode()
    path = audit_key_path(settings)
    if not path.exists() and settings.may_generate_keys:
        try:
            if create_audit_key_file(path):
                logger.info("generated the audit HMAC key %s", path)
        except OSError as exc:
            raise KeyConfigurationError(f"cannot create the audit HMAC key {path}: {exc}") from exc
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        raise KeyConfigurationError(
            "no audit HMAC key: set AUTH_AUDIT_HMAC_KEY or run `authsvc keys audit-key` "
            f"(no {AUDIT_KEY_FILE} in AUTH_KEYS_DIR={settings.keys_dir})"
        ) from None
    except OSError as exc:
        raise KeyConfigurationError(f"cannot read the audit HMAC key {path}: {exc}") from exc
    if len(key) < MIN_KEY_LENGTH:
        raise KeyConfigurationError(f"{path} holds no usable key ({MIN_KEY_LENGTH} characters)")
    return key.encode()


class AuditHmac:
    """Keyed digests of identifiers. The key is read on first use (or by `load`, which the
    service calls at start-up to fail early), so commands that never digest need none."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key: bytes | None = None

    def load(self) -> None:
        if self._key is None:
            self._key = load_audit_key(self._settings)

    def digest(self, identifier: str) -> str:
        """The hex HMAC-SHA256 of `identifier` under the audit key, shortened."""
        self.load()
        assert self._key is not None
        mac = hmac.new(self._key, identifier.encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()[:DIGEST_HEX_LENGTH]
