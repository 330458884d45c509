"""The key ring the settings call for.

An explicitly configured key (`AUTH_JWT_PRIVATE_KEY` or `_FILE`) signs; otherwise the key ring
in `AUTH_KEYS_DIR` does, generated on first use in development. Configured previous public
keys (`AUTH_JWT_PREVIOUS_PUBLIC_KEYS`) verify in both cases.
"""

from __future__ import annotations

import logging
from datetime import datetime

from app.config import Settings
from app.security.keys.directory import KeyDirectory
from app.security.keys.errors import KeyConfigurationError, KeyRingExistsError
from app.security.keys.pem import load_private_key_pem, load_public_keys_pem
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SigningKey

logger = logging.getLogger(__name__)


def _configured_signing_key(settings: Settings) -> SigningKey:
    if settings.jwt_private_key is not None and settings.jwt_private_key_file is not None:
        raise KeyConfigurationError(
            "set AUTH_JWT_PRIVATE_KEY or AUTH_JWT_PRIVATE_KEY_FILE, not both"
        )
    if settings.jwt_private_key is not None:
        source = "AUTH_JWT_PRIVATE_KEY"
        pem: str | bytes = settings.jwt_private_key.get_secret_value()
    else:
        assert settings.jwt_private_key_file is not None
        path = settings.jwt_private_key_file
        source = f"AUTH_JWT_PRIVATE_KEY_FILE ({path})"
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyConfigurationError(f"cannot read {source}: {exc.strerror}") from exc
    private_key = load_private_key_pem(pem, source=source)
    try:
        return SigningKey.from_private_key(private_key, algorithm=settings.jwt_algorithm)
    except KeyConfigurationError as exc:
        raise KeyConfigurationError(
            f"{source} does not fit AUTH_JWT_ALGORITHM={settings.jwt_algorithm}: {exc}"
        ) from exc


def _configured_previous_keys(settings: Settings) -> list[SigningKey]:
    source = "AUTH_JWT_PREVIOUS_PUBLIC_KEYS"
    keys = load_public_keys_pem(settings.jwt_previous_public_keys or "", source=source)
    try:
        return [SigningKey.from_public_key(key) for key in keys]
    except KeyConfigurationError as exc:
        raise KeyConfigurationError(f"{source}: {exc}") from exc


def load_key_ring(settings: Settings, now: datetime | None = None) -> KeyRing:
    """The keys the service signs and verifies with.

    An explicitly configured key (`AUTH_JWT_PRIVATE_KEY` or `_FILE`) signs; otherwise the
    key ring in `AUTH_KEYS_DIR` does, generated on first use when `settings.may_generate_keys`.
    `AUTH_JWT_PREVIOUS_PUBLIC_KEYS` are added as verification-only keys in both cases.
    """
    previous = _configured_previous_keys(settings)
    if settings.has_configured_signing_key:
        return KeyRing(_configured_signing_key(settings), previous)

    directory = KeyDirectory(settings.keys_dir)
    if not directory.exists():
        if not settings.may_generate_keys:
            raise KeyConfigurationError(
                "no signing key: set AUTH_JWT_PRIVATE_KEY(_FILE) or run `authsvc keys generate` "
                f"(no key ring in AUTH_KEYS_DIR={settings.keys_dir})"
            )
        try:
            key = directory.generate(settings.jwt_algorithm)
            logger.info(
                "generated a %s signing key %s in %s", key.algorithm, key.kid, directory.path
            )
        except KeyRingExistsError:
            pass  # another replica got there first
        except OSError as exc:
            raise KeyConfigurationError(
                f"cannot create the key ring in AUTH_KEYS_DIR={settings.keys_dir}: {exc}"
            ) from exc
    ring = directory.load(now)
    if ring.signing_key.algorithm != settings.jwt_algorithm:
        # The ring on disk is shared by every replica, so it decides; the setting only picks
        # the algorithm of keys generated from now on.
        logger.warning(
            "the key ring in %s signs with %s, not AUTH_JWT_ALGORITHM=%s; "
            "run `authsvc keys rotate --algorithm %s` to switch",
            directory.path,
            ring.signing_key.algorithm,
            settings.jwt_algorithm,
            settings.jwt_algorithm,
        )
    if not previous:
        return ring
    return KeyRing(ring.signing_key, [*ring.previous_keys, *previous])
