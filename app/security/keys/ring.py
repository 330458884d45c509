"""The key ring: the current signing key and every key whose tokens may still be valid.

All of them are published in the JWKS. Rotation adds a new current key and keeps the old one
published until its last token has expired (`publish_until`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from app.security.keys.errors import KeyConfigurationError
from app.security.keys.signing_key import SigningKey


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
