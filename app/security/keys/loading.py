"""The key ring the settings call for, when it is not in the database.

An explicitly configured key (`AUTH_JWT_PRIVATE_KEY` or `_FILE`) signs; otherwise the key ring
in `AUTH_KEYS_DIR` does, generated on first use in development. Configured previous public
keys (`AUTH_JWT_PREVIOUS_PUBLIC_KEYS`) verify in every case.
"""

from __future__ import annotations

import logging
from datetime import datetime

from app.config import Settings
from app.security.keys.directory import KeyDirectory
from app.security.keys.errors import KeyConfigurationError, KeyRingExistsError
from app.security.keys.lifecycle import KeySchedule, aware
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


def configured_previous_keys(settings: Settings) -> list[SigningKey]:
    """`AUTH_JWT_PREVIOUS_PUBLIC_KEYS`: verification-only keys published beside the ring."""
    source = "AUTH_JWT_PREVIOUS_PUBLIC_KEYS"
    keys = load_public_keys_pem(settings.jwt_previous_public_keys or "", source=source)
    try:
        return [SigningKey.from_public_key(key) for key in keys]
    except KeyConfigurationError as exc:
        raise KeyConfigurationError(f"{source}: {exc}") from exc


def warn_of_algorithm_mismatch(settings: Settings, ring: KeyRing, where: str) -> None:
    """Log when the ring signs with another algorithm than `AUTH_JWT_ALGORITHM`: the stored
    ring is shared by every replica, so it decides; the setting only picks the algorithm of
    keys generated from now on."""
    if ring.signing_key.algorithm != settings.jwt_algorithm:
        logger.warning(
            "the key ring in %s signs with %s, not AUTH_JWT_ALGORITHM=%s; "
            "run `authsvc keys rotate --algorithm %s` to switch",
            where,
            ring.signing_key.algorithm,
            settings.jwt_algorithm,
            settings.jwt_algorithm,
        )


def load_key_schedule(settings: Settings, now: datetime | None = None) -> KeySchedule:
    """The schedule of the keys the service signs with, from a configured key or the
    directory store.

    An explicitly configured key (`AUTH_JWT_PRIVATE_KEY` or `_FILE`) signs, and nothing else
    does; otherwise the key ring in `AUTH_KEYS_DIR` does, generated on first use when
    `settings.may_generate_keys`. (The database store is read by
    `app.services.tokens.signing_keys`.) Configured previous keys are not part of it: see
    `configured_previous_keys`.
    """
    now = aware(now)
    if settings.has_configured_signing_key:
        return KeySchedule.of_ring(KeyRing(_configured_signing_key(settings)))

    directory = KeyDirectory(settings.keys_dir)
    if not directory.exists():
        if not settings.may_generate_keys:
            raise KeyConfigurationError(
                "no signing key: set AUTH_JWT_PRIVATE_KEY(_FILE) or run `authsvc keys generate` "
                f"(no key ring in AUTH_KEYS_DIR={settings.keys_dir})"
            )
        try:
            key = directory.generate(settings.jwt_algorithm, now=now)
            logger.info(
                "generated a %s signing key %s in %s", key.algorithm, key.kid, directory.path
            )
        except KeyRingExistsError:
            pass  # another replica got there first
        except OSError as exc:
            raise KeyConfigurationError(
                f"cannot create the key ring in AUTH_KEYS_DIR={settings.keys_dir}: {exc}"
            ) from exc
    schedule = directory.load_schedule(now)
    warn_of_algorithm_mismatch(settings, schedule.ring_at(now), str(directory.path))
    return schedule


def load_key_ring(settings: Settings, now: datetime | None = None) -> KeyRing:
    """The keys the service signs and verifies with at `now` (see `load_key_schedule`), with
    `AUTH_JWT_PREVIOUS_PUBLIC_KEYS` added as verification-only keys."""
    now = aware(now)
    return load_key_schedule(settings, now).ring_at(now, configured_previous_keys(settings))
