"""OpenID Connect ID tokens (OIDC Core 2): JWTs for the client that signed the user in, signed
with the access tokens' key ring.

An ID token tells a client who signed in; it is not a credential for an API. Its header says
`typ: JWT`, not the `at+jwt` of access tokens, and its `aud` is the client, not this service,
so the service's codec and the consumer kit refuse it as an access token on two counts.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import jwt

from app.security.access_tokens import AccessTokenCodec
from app.security.keys.provider import KeyRingProvider
from authsvc_kit import rules
from authsvc_kit.errors import InvalidToken

ID_TOKEN_TYPE: Final = "JWT"
# Claims only the signer sets: a caller passing them has a bug.
_SIGNER_CLAIMS: Final = frozenset({"iss", "aud", "iat", "exp", "at_hash"})
# The hash of `at_hash` is the one of the signing algorithm (OIDC Core 3.1.3.6); Ed25519
# signatures use SHA-512 (as OpenID's EdDSA registration and Authlib's check say).
_HASH_OF_ALGORITHM: Final[Mapping[str, Callable[[bytes], Any]]] = {
    "RS256": hashlib.sha256,
    "ES256": hashlib.sha256,
    "EdDSA": hashlib.sha512,
}


def half_hash(value: str, algorithm: str) -> str:
    """`at_hash` (or `c_hash`) of `value` for an ID token signed with `algorithm`: the
    left-most half of the algorithm's hash of the ASCII `value`, base64url without padding."""
    digest: bytes = _HASH_OF_ALGORITHM[algorithm](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class IdTokenSigner:
    """Signs ID tokens with the ring's current key (its `kid` in the header)."""

    def __init__(
        self,
        keys: KeyRingProvider,
        *,
        issuer: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (Unix time) dates new tokens; they live `ttl_seconds`."""
        self.keys = keys
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    @classmethod
    def alongside(cls, codec: AccessTokenCodec) -> IdTokenSigner:
        """The signer for the ID tokens issued with `codec`'s access tokens: the same key ring,
        issuer and lifetime, so the JWKS that verifies one verifies the other, and a retired
        key stays published until the last token of either kind it signed has expired."""
        return cls(codec.keys, issuer=codec.issuer, ttl_seconds=codec.ttl_seconds)

    @property
    def algorithms(self) -> list[str]:
        """The algorithms ID tokens may be signed with (the signing key's first), for
        discovery."""
        return self.keys.current().algorithms

    def sign(
        self, claims: Mapping[str, Any], *, audience: str, access_token: str | None = None
    ) -> str:
        """Sign `claims` (sub, auth_time, nonce, ...) as an ID token for the client `audience`.

        The signer sets `iss`, `aud` (the single string `audience`), `iat`, `exp` and, given
        the `access_token` issued with it, `at_hash`; passing them is a `ValueError`.
        """
        reserved = _SIGNER_CLAIMS.intersection(claims)
        if reserved:
            raise ValueError(f"claims set by the signer: {', '.join(sorted(reserved))}")
        key = self.keys.current().signing_key
        if key.private_key is None:  # KeyRing refuses such a signing key; this narrows the type
            raise RuntimeError("the signing key has no private key")
        issued_at = int(self._clock())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": audience,
            "iat": issued_at,
            "exp": issued_at + self.ttl_seconds,
        }
        if access_token is not None:
            payload["at_hash"] = half_hash(access_token, key.algorithm)
        return jwt.encode(
            payload,
            key.private_key,
            algorithm=key.algorithm,
            headers={"typ": ID_TOKEN_TYPE, "kid": key.kid},
        )


def read_id_token_hint(codec: AccessTokenCodec, token: str) -> dict[str, Any] | None:
    """The claims of an ID token this service issued (`id_token_hint` of RP-initiated logout,
    OpenID Connect RP-Initiated Logout 1.0 section 2), or None for anything else.

    The signature, issuer and `typ` are checked; expiry is not (a client signs the user out
    with the ID token it has, however old) and `aud` is returned for the caller to use (it
    names the client). A key no longer published verifies nothing: such a hint is None.
    """
    try:
        rules.check_size(token)
        header = rules.unverified_header(rules.header_segment(token))
        key = codec.keys.verification_key(rules.key_id(header))
        if key is None or header.get("typ") != ID_TOKEN_TYPE:
            return None
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[key.algorithm],
            issuer=codec.issuer,
            options={"verify_exp": False, "verify_aud": False, "require": ["iss", "aud", "sub"]},
        )
    except (InvalidToken, jwt.PyJWTError):
        return None
    return claims
