"""RFC 9068 access tokens: JWTs signed with the key ring's current key, verified with pinned
algorithms.

`decode` runs on every authenticated request. It picks the key by `kid` from the header and
hands PyJWT that key's prepared object with that key's algorithm as the only allowed one, so
the cost stays one signature check plus PyJWT's own parsing. The checks themselves (size, header,
`typ`, required claims, reasons) are the consumer kit's `authsvc_kit.rules`, so the service and
its resource servers refuse exactly the same tokens.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import jwt

from app.config import Settings
from app.security.keys.provider import KeyRingProvider
from app.security.keys.ring import KeyRing
from authsvc_kit import rules
from authsvc_kit.errors import InvalidToken
from authsvc_kit.rules import REQUIRED_CLAIMS, TOKEN_TYPE

# The service refuses a token with the consumer kit's error: one class, one vocabulary of
# reasons (`malformed`, `missing_kid`, `unknown_kid`, `algorithm_not_allowed`,
# `bad_signature`, `expired`, `not_yet_valid`, `missing_claim`, `wrong_issuer`,
# `wrong_audience`, `wrong_type`, `invalid_claim`) for the service and its resource servers.
InvalidAccessToken = InvalidToken

# Claims only the codec sets: a caller passing them has a bug.
_CODEC_CLAIMS: Final = frozenset({"iss", "aud", "iat", "exp"})
# Claims listing what the subject holds, left out of a token when they list nothing.
_OMITTED_WHEN_EMPTY: Final = frozenset({"scope", "roles"})


class AccessTokenCodec:
    """Signs access tokens with the ring's current key and verifies them against the ring."""

    def __init__(
        self,
        keys: KeyRingProvider | KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        leeway_seconds: float = 30.0,
        required_claims: Sequence[str] = REQUIRED_CLAIMS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`leeway_seconds` absorbs clock skew between replicas and resource servers in the
        `exp`, `iat` and `nbf` checks; `clock` (Unix time) dates new tokens."""
        self.keys = keys if isinstance(keys, KeyRingProvider) else KeyRingProvider.fixed(keys)
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.leeway_seconds = leeway_seconds
        self._clock = clock
        self._decoder = rules.claims_decoder(required_claims)

    @property
    def algorithms(self) -> list[str]:
        """The algorithms of the published keys (the signing key's first), for discovery."""
        return self.keys.current().algorithms

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The RFC 7517 JWK Set to publish: current and still-valid retired public keys."""
        return self.keys.current().jwks()

    def encode(self, claims: Mapping[str, Any], *, audiences: Sequence[str] = ()) -> str:
        """Sign `claims` (sub, client_id, scope, roles, sid, ...) as an RFC 9068 access token.

        The codec sets `iss`, `aud`, `iat` and `exp` (passing them is a `ValueError`) and a
        random `jti` unless `claims` has one. `audiences` adds resource servers to `aud`
        beside this service's own audience. An empty `scope` or `roles` is left out: RFC 9068
        validators (Authlib's among them) reject `"scope": ""` and `"roles": []`, which would
        make the token of a user holding neither useless; absent means none.
        """
        reserved = _CODEC_CLAIMS.intersection(claims)
        if reserved:
            raise ValueError(f"claims set by the codec: {', '.join(sorted(reserved))}")
        key = self.keys.current().signing_key
        if key.private_key is None:  # KeyRing refuses such a signing key; this narrows the type
            raise RuntimeError("the signing key has no private key")
        issued_at = int(self._clock())
        payload = {
            "jti": str(uuid.uuid4()),
            **{
                name: value
                for name, value in claims.items()
                if value or name not in _OMITTED_WHEN_EMPTY
            },
            "iss": self.issuer,
            "aud": [self.audience, *audiences] if audiences else self.audience,
            "iat": issued_at,
            "exp": issued_at + self.ttl_seconds,
        }
        return jwt.encode(
            payload,
            key.private_key,
            algorithm=key.algorithm,
            headers={"typ": TOKEN_TYPE, "kid": key.kid},
        )

    def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of `token`, or `InvalidAccessToken`.

        The key is the one `kid` names, and only that key's algorithm is allowed, whatever the
        header's `alg` says: `alg: none` and HMAC-with-the-public-key forgeries cannot pass.
        `exp`, `iat`, `iss`, `aud` and `sub` are required; `iss`, `aud` and `typ` must match.
        """
        rules.check_size(token)
        kid = rules.key_id(rules.unverified_header(rules.header_segment(token)))
        key = self.keys.verification_key(kid)
        if key is None:
            raise InvalidAccessToken("unknown_kid")
        decoded = rules.decode_verified(
            self._decoder,
            token,
            key.public_key,
            (key.algorithm,),
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway_seconds,
        )
        rules.check_type(decoded["header"])
        claims: dict[str, Any] = decoded["payload"]
        return claims


def build_access_token_codec(
    settings: Settings, keys: KeyRingProvider | None = None
) -> AccessTokenCodec:
    """The service's codec over `keys` (default: the configured key or the key directory,
    reloaded when the directory changes)."""
    return AccessTokenCodec(
        keys if keys is not None else KeyRingProvider.from_settings(settings),
        issuer=settings.issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
