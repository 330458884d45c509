"""Signing keys for access tokens: key pairs, the key ring, its directory on disk, and how the
service finds its keys.

The ring holds the current signing key plus every retired key whose tokens may still be alive;
all of them are published in the JWKS. Rotation adds a new current key and keeps the old one
published until its last token has expired (`publish_until`).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from app.config import Settings

logger = logging.getLogger(__name__)

Algorithm = Literal["RS256", "ES256", "EdDSA"]
SUPPORTED_ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# 2048 bits is what RFC 7518 requires and what the large identity providers sign with.
RSA_KEY_SIZE: Final = 2048
MIN_RSA_KEY_SIZE: Final = 2048

MANIFEST_NAME: Final = "keys.json"
_MANIFEST_VERSION: Final = 1
_LOCK_NAME: Final = ".lock"
# A kid is a base64url SHA-256 thumbprint; checking the shape keeps manifest entries from
# naming files outside the directory.
_KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_PUBLIC_PEM_BLOCK: Final = re.compile(
    r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL
)


class KeyConfigurationError(Exception):
    """The signing keys are missing, unreadable, or unfit for their algorithm."""


class KeyRingExistsError(KeyConfigurationError):
    """`generate` found a key ring and was not told to replace it."""


class KeyRingNotFoundError(KeyConfigurationError):
    """The key directory holds no key ring."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (UTC)")
    return now


# --- keys ---------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _required_jwk_members(public_key: PublicKey) -> dict[str, str]:
    """The JWK members RFC 7638 hashes: exactly the key material, nothing else."""
    if isinstance(public_key, rsa.RSAPublicKey):
        rsa_numbers = public_key.public_numbers()
        return {"e": _b64url_uint(rsa_numbers.e), "kty": "RSA", "n": _b64url_uint(rsa_numbers.n)}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        ec_numbers = public_key.public_numbers()
        size = (public_key.curve.key_size + 7) // 8  # coordinates are fixed-length (RFC 7518)
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(ec_numbers.x.to_bytes(size, "big")),
            "y": _b64url(ec_numbers.y.to_bytes(size, "big")),
        }
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}


def jwk_thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the key's `kid`."""
    canonical = json.dumps(_required_jwk_members(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def algorithm_for(public_key: object) -> Algorithm:
    """The algorithm a key signs with; `KeyConfigurationError` for keys this service refuses."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_KEY_SIZE:
            raise KeyConfigurationError(
                f"RSA key of {public_key.key_size} bits; RS256 needs at least {MIN_RSA_KEY_SIZE}"
            )
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise KeyConfigurationError(
                f"EC key on curve {public_key.curve.name}; ES256 needs P-256 (secp256r1)"
            )
        return "ES256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise KeyConfigurationError(
        f"unsupported key type {type(public_key).__name__}: "
        "use RSA (>= 2048 bits) for RS256, EC P-256 for ES256 or Ed25519 for EdDSA"
    )


def _checked_algorithm(public_key: object, algorithm: Algorithm | None) -> Algorithm:
    actual = algorithm_for(public_key)
    if algorithm is not None and algorithm != actual:
        raise KeyConfigurationError(f"the key is a {actual} key, not fit for {algorithm}")
    return actual


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A token-signing key pair. Retired and configured previous keys carry only the public
    half: they verify and are published, but never sign again.

    Build instances with `generate`, `from_private_key` or `from_public_key`, which derive
    `kid` and check that the key fits `algorithm`.
    """

    kid: str
    algorithm: Algorithm
    public_key: PublicKey
    private_key: PrivateKey | None = field(default=None, repr=False)
    # Retired keys: published and accepted until then (UTC). None: as long as configured.
    publish_until: datetime | None = None

    @classmethod
    def generate(cls, algorithm: Algorithm) -> SigningKey:
        """A fresh key pair for `algorithm`."""
        private_key: PrivateKey
        if algorithm == "RS256":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
        elif algorithm == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "EdDSA":
            private_key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise KeyConfigurationError(f"unsupported algorithm {algorithm!r}")
        return cls.from_private_key(private_key, algorithm=algorithm)

    @classmethod
    def from_private_key(
        cls, private_key: PrivateKey, *, algorithm: Algorithm | None = None
    ) -> SigningKey:
        """Wrap a private key; `algorithm` (if given) must match the key's type."""
        public_key = private_key.public_key()
        return cls(
            kid=jwk_thumbprint(public_key),
            algorithm=_checked_algorithm(public_key, algorithm),
            public_key=public_key,
            private_key=private_key,
        )

    @classmethod
    def from_public_key(
        cls,
        public_key: PublicKey,
        *,
        algorithm: Algorithm | None = None,
        publish_until: datetime | None = None,
    ) -> SigningKey:
        """A verification-only key; `algorithm` (if given) must match the key's type."""
        return cls(
            kid=jwk_thumbprint(public_key),
            algorithm=_checked_algorithm(public_key, algorithm),
            public_key=public_key,
            publish_until=publish_until,
        )

    def retired(self, publish_until: datetime) -> SigningKey:
        """This key without its private half, published until `publish_until`."""
        return replace(self, private_key=None, publish_until=publish_until)

    def is_published_at(self, now: datetime) -> bool:
        return self.publish_until is None or now < self.publish_until

    def public_jwk(self) -> dict[str, str]:
        """RFC 7517 JWK of the public key, with `kid`, `alg` and `use: sig`."""
        return {
            **_required_jwk_members(self.public_key),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }


def _supported_private_key(key: object, source: str) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise KeyConfigurationError(
        f"{source}: unsupported key type {type(key).__name__}; "
        "use RSA (>= 2048 bits), EC P-256 or Ed25519"
    )


def _supported_public_key(key: object, source: str) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise KeyConfigurationError(
        f"{source}: unsupported key type {type(key).__name__}; "
        "use RSA (>= 2048 bits), EC P-256 or Ed25519"
    )


def _unescape_pem(pem: str) -> str:
    # Environment variables often carry PEM with literal "\n" (docker, CI secrets).
    return pem.replace("\\n", "\n") if "\n" not in pem.strip() else pem


def load_private_key_pem(pem: str | bytes, *, source: str = "private key") -> PrivateKey:
    """An unencrypted PEM private key (PKCS#8 or traditional); `source` names it in errors."""
    data = _unescape_pem(pem.decode("utf-8", "replace") if isinstance(pem, bytes) else pem)
    try:
        key = serialization.load_pem_private_key(data.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # The message names the source only: never echo key material.
        raise KeyConfigurationError(f"{source} is not an unencrypted PEM private key") from exc
    return _supported_private_key(key, source)


def load_public_keys_pem(bundle: str, *, source: str = "public keys") -> list[PublicKey]:
    """Every `BEGIN PUBLIC KEY` block of a PEM bundle (empty or blank: none)."""
    text = _unescape_pem(bundle)
    if not text.strip():
        return []
    blocks = _PUBLIC_PEM_BLOCK.findall(text)
    if not blocks:
        raise KeyConfigurationError(f"{source} holds no PEM public key (BEGIN PUBLIC KEY)")
    keys: list[PublicKey] = []
    for number, block in enumerate(blocks, start=1):
        try:
            key = serialization.load_pem_public_key(block.encode("utf-8"))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyConfigurationError(f"{source}: key #{number} is not valid PEM") from exc
        keys.append(_supported_public_key(key, source))
    return keys


# --- the ring -----------------------------------------------------------------------------


class KeyRing:
    """The current signing key and every key whose tokens may still be valid. Immutable."""

    __slots__ = ("_jwks", "_keys", "_signing_key")

    def __init__(self, signing_key: SigningKey, previous_keys: Iterable[SigningKey] = ()) -> None:
        if signing_key.private_key is None:
            raise KeyConfigurationError(f"signing key {signing_key.kid} has no private key")
        keys = {signing_key.kid: signing_key}
        for key in previous_keys:
            keys.setdefault(key.kid, key)
        self._signing_key = signing_key
        self._keys = keys
        self._jwks = tuple(key.public_jwk() for key in keys.values())

    @property
    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with."""
        return self._signing_key

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every published key, the signing key first."""
        return tuple(self._keys.values())

    @property
    def previous_keys(self) -> tuple[SigningKey, ...]:
        """The verification-only keys (retired or configured)."""
        return self.keys[1:]

    @property
    def algorithms(self) -> list[str]:
        """The algorithms of the published keys, the signing key's first."""
        return list(dict.fromkeys(key.algorithm for key in self._keys.values()))

    @property
    def next_expiry(self) -> datetime | None:
        """When the next retired key stops being published, if ever."""
        ends = [key.publish_until for key in self._keys.values() if key.publish_until]
        return min(ends, default=None)

    def verification_key(self, kid: str) -> SigningKey | None:
        """The published key named `kid`, if any."""
        return self._keys.get(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """RFC 7517 JWK Set of the public keys (a fresh copy the caller may change)."""
        return {"keys": [dict(jwk) for jwk in self._jwks]}

    def published_at(self, now: datetime) -> KeyRing:
        """This ring without the retired keys whose publication ended by `now`."""
        expiry = self.next_expiry
        if expiry is None or now < expiry:
            return self
        return KeyRing(self._signing_key, (k for k in self.previous_keys if k.is_published_at(now)))


# --- the key directory --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What `KeyDirectory.rotate` did: the new signing key and the key it retired, which is
    published until `publish_until`."""

    current: SigningKey
    retired: SigningKey
    publish_until: datetime


@dataclass(frozen=True, slots=True)
class _ManifestEntry:
    kid: str
    algorithm: Algorithm
    publish_until: datetime | None = None

    def to_json(self) -> dict[str, str]:
        data = {"kid": self.kid, "algorithm": self.algorithm}
        if self.publish_until is not None:
            data["publish_until"] = self.publish_until.astimezone(UTC).isoformat()
        return data


@dataclass(frozen=True, slots=True)
class _Manifest:
    current: _ManifestEntry
    retired: tuple[_ManifestEntry, ...] = ()

    def to_bytes(self) -> bytes:
        document = {
            "version": _MANIFEST_VERSION,
            "current": self.current.to_json(),
            "retired": [entry.to_json() for entry in self.retired],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _parse_entry(data: Any, *, retired: bool) -> _ManifestEntry:
    if not isinstance(data, dict):
        raise ValueError("an entry is not an object")
    kid, algorithm = data.get("kid"), data.get("algorithm")
    if not isinstance(kid, str) or not _KID_PATTERN.fullmatch(kid):
        raise ValueError(f"bad kid {kid!r}")
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"bad algorithm {algorithm!r}")
    publish_until = None
    if retired:
        publish_until = datetime.fromisoformat(str(data.get("publish_until")))
        if publish_until.tzinfo is None:
            raise ValueError("publish_until has no time zone")
    return _ManifestEntry(kid, algorithm, publish_until)


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
            self._write_manifest(_Manifest(_ManifestEntry(key.kid, key.algorithm)))
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
            entry = _ManifestEntry(retired.kid, retired.algorithm, publish_until)
            still_published = [e for e in manifest.retired if _is_published(e, now)]
            # The new key's file exists before the manifest names it; the old key loses its
            # private half only after the manifest no longer calls it current.
            self._write_key_file(key)
            self._write_manifest(
                _Manifest(_ManifestEntry(key.kid, key.algorithm), (entry, *still_published))
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
                ring, expired = self._ring_from(self._parse_manifest(raw), now)
            except KeyConfigurationError:
                if self.revision() != raw:
                    continue
                raise
            if expired:
                self._prune(now)
            return ring
        raise KeyConfigurationError(f"the key ring in {self.path} kept changing while read")

    # --- internals ---

    def _ring_from(self, manifest: _Manifest, now: datetime) -> tuple[KeyRing, bool]:
        signing_key = self._read_key(manifest.current, private=True)
        published = [e for e in manifest.retired if _is_published(e, now)]
        previous = [self._read_key(entry, private=False) for entry in published]
        return KeyRing(signing_key, previous), len(published) < len(manifest.retired)

    def _prune(self, now: datetime) -> None:
        try:
            with self._locked():
                manifest = self._read_manifest()
                published = tuple(e for e in manifest.retired if _is_published(e, now))
                if len(published) < len(manifest.retired):
                    self._write_manifest(_Manifest(manifest.current, published))
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

    def _read_manifest(self) -> _Manifest:
        return self._parse_manifest(self._read_manifest_bytes())

    def _parse_manifest(self, raw: bytes) -> _Manifest:
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("version") != _MANIFEST_VERSION:
                raise ValueError(f"unknown manifest version in {self.manifest_path}")
            retired = document.get("retired", [])
            if not isinstance(retired, list):
                raise ValueError("`retired` is not a list")
            return _Manifest(
                current=_parse_entry(document.get("current"), retired=False),
                retired=tuple(_parse_entry(entry, retired=True) for entry in retired),
            )
        except (ValueError, TypeError) as exc:
            raise KeyConfigurationError(f"{self.manifest_path} is corrupt: {exc}") from exc

    def _key_path(self, kid: str) -> Path:
        return self.path / f"{kid}.pem"

    def _read_key(self, entry: _ManifestEntry, *, private: bool) -> SigningKey:
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

    def _write_manifest(self, manifest: _Manifest) -> None:
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


def _is_published(entry: _ManifestEntry, now: datetime) -> bool:
    return entry.publish_until is None or now < entry.publish_until


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


# --- what the service signs with ----------------------------------------------------------


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
