"""An async cache of authsvc's published signing keys (its JWKS).

Keys are fetched from `/.well-known/jwks.json`, turned into PyJWT key objects once, and
served from memory. The set is refreshed after `max_age`; a token naming an unknown `kid`
(after a key rotation) triggers an early refetch, at most once per `min_refetch_interval`,
so a flood of tokens with made-up kids costs authsvc at most one request per interval.
Concurrent refetches share one request. A failed fetch keeps the keys already cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from authsvc_kit.errors import AuthsvcUnavailable

logger = logging.getLogger(__name__)

DEFAULT_MAX_AGE: Final = 300.0  # what authsvc's Cache-Control on the JWKS says
DEFAULT_MIN_REFETCH_INTERVAL: Final = 5.0
DEFAULT_TIMEOUT: Final = 5.0
# A JWKS holds a handful of keys (a few KiB); anything far bigger is not authsvc's.
MAX_JWKS_BYTES: Final = 256 * 1024
MIN_RSA_KEY_SIZE: Final = 2048


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One published public key, prepared for PyJWT, with the only algorithm it verifies."""

    kid: str
    algorithm: str
    jwk: jwt.PyJWK = field(repr=False)
    # `(algorithm,)`, built once so verification passes it without allocating.
    algorithms: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", (self.algorithm,))


def _is_fit(key: object, algorithm: str) -> bool:
    """Whether `key` is a public key strong enough for `algorithm` (authsvc's own rules)."""
    if algorithm.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_KEY_SIZE
    if algorithm == "ES256":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    if algorithm == "ES384":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1)
    if algorithm == "ES512":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP521R1)
    if algorithm == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False  # HMAC and anything else: never a published verification key


def parse_jwk(jwk: object) -> VerificationKey | None:
    """A verification key from one JWK, or None for entries this kit must not use: no `kid`,
    not for signatures, symmetric or private key material, weak or mismatched keys."""
    if not isinstance(jwk, dict):
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
        return None
    if "d" in jwk or jwk.get("kty") == "oct":
        # A private or shared secret in a public key set is a broken issuer, not a key to use.
        return None
    try:
        # PyJWK takes the algorithm from `alg` (or infers it from kty/crv) and checks that the
        # key material fits it.
        key = jwt.PyJWK(jwk)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    if not _is_fit(key.key, key.algorithm_name):
        return None
    return VerificationKey(kid=kid, algorithm=key.algorithm_name, jwk=key)


def parse_jwks(document: object) -> dict[str, VerificationKey]:
    """The usable keys of a JWK Set by kid; unusable entries are skipped (and logged)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set: no `keys` list")
    keys: dict[str, VerificationKey] = {}
    for entry in document["keys"]:
        key = parse_jwk(entry)
        if key is None:
            logger.warning("skipping an unusable JWK (kid %r)", _kid_of(entry))
        elif key.kid in keys:
            logger.warning("skipping a second JWK with kid %r", key.kid)
        else:
            keys[key.kid] = key
    return keys


def _kid_of(entry: object) -> object:
    return entry.get("kid") if isinstance(entry, dict) else None


class JWKSCache:
    """authsvc's public keys by kid, fetched over HTTP and cached.

    `http_client` is used as given (and not closed by `aclose`); without one, the cache makes
    its own. `clock` is a monotonic clock in seconds (tests pass their own).
    """

    def __init__(
        self,
        jwks_url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0 or min_refetch_interval < 0:
            raise ValueError("max_age must be positive and min_refetch_interval not negative")
        self.jwks_url = jwks_url
        self.max_age = max_age
        self.min_refetch_interval = min_refetch_interval
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout)
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._refresh_due = -math.inf
        self._last_attempt = -math.inf
        self._attempts = 0
        self._last_error: str | None = None  # why the last fetch failed; None if it worked
        self._lock = asyncio.Lock()

    @property
    def keys(self) -> Mapping[str, VerificationKey]:
        """The cached keys by kid (a read-only view of the current set)."""
        return MappingProxyType(self._keys)

    @property
    def fetch_count(self) -> int:
        """How many times the key set was requested from authsvc (successfully or not)."""
        return self._attempts

    def is_stale(self) -> bool:
        """Whether the cached set is older than `max_age` (or was never fetched)."""
        return self._clock() >= self._refresh_due

    def cached_key(self, kid: str) -> VerificationKey | None:
        """The cached key named `kid`, without any I/O (stale or not)."""
        return self._keys.get(kid)

    async def get_key(self, kid: str) -> VerificationKey | None:
        """The key named `kid`: from the cache, refreshing it when older than `max_age`, or
        after a refetch if `kid` is unknown and no fetch ran in the last
        `min_refetch_interval`. None if authsvc does not publish it.

        `AuthsvcUnavailable` only when no key could ever be fetched: with a cached set, a
        failing authsvc is logged and the cached keys keep working.
        """
        attempts = self._attempts
        if self._clock() >= self._refresh_due:
            await self._refetch()
        key = self._keys.get(kid)
        if key is None and self._attempts == attempts:
            await self._refetch()
            key = self._keys.get(kid)
        if key is None and not self._keys and self._last_error is not None:
            raise AuthsvcUnavailable(self._last_error)
        return key

    async def refresh(self) -> None:
        """Fetch the key set now (say, at start-up); `AuthsvcUnavailable` if that fails.

        Coalesces with a fetch in flight but ignores `min_refetch_interval`.
        """
        await self._refetch(forced=True)
        if self._last_error is not None:
            raise AuthsvcUnavailable(self._last_error)

    async def aclose(self) -> None:
        """Close the HTTP client, if the cache made it."""
        if self._owns_client:
            await self._http.aclose()

    async def _refetch(self, *, forced: bool = False) -> None:
        attempts_seen = self._attempts
        if not forced and not self._may_fetch() and not self._lock.locked():
            return
        # With a fetch in flight, wait for it (whatever the rate limit says) and use its keys.
        async with self._lock:
            if self._attempts != attempts_seen:
                return  # another caller fetched while this one waited: use its result
            if not forced and not self._may_fetch():
                return
            # Counted before the request, so that callers arriving meanwhile wait or back off.
            self._attempts += 1
            self._last_attempt = self._clock()
            try:
                keys = await self._fetch()
            except AuthsvcUnavailable as error:
                self._last_error = str(error)
                logger.warning(
                    "could not refresh the JWKS from %s (%s); %d cached keys stay in use",
                    self.jwks_url,
                    error,
                    len(self._keys),
                )
                return
            self._keys = keys
            self._last_error = None
            self._refresh_due = self._clock() + self.max_age

    def _may_fetch(self) -> bool:
        return self._clock() >= self._last_attempt + self.min_refetch_interval

    async def _fetch(self) -> dict[str, VerificationKey]:
        try:
            async with self._http.stream(
                "GET", self.jwks_url, headers={"Accept": "application/json"}, timeout=self._timeout
            ) as response:
                if response.status_code != 200:
                    raise AuthsvcUnavailable(f"JWKS answered HTTP {response.status_code}")
                body = await _read_bounded(response, MAX_JWKS_BYTES)
        except httpx.HTTPError as error:
            raise AuthsvcUnavailable(f"JWKS request failed: {type(error).__name__}") from error
        try:
            document: Any = json.loads(body)
            keys = parse_jwks(document)
        except ValueError as error:
            raise AuthsvcUnavailable(f"JWKS is not a JWK Set: {error}") from error
        if not keys:
            raise AuthsvcUnavailable("JWKS holds no usable key")
        return keys


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise AuthsvcUnavailable(f"JWKS larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
