"""RFC 9068 access tokens: JWTs signed with the key ring's current key, verified with pinned
algorithms.

`decode` runs on every authenticated request. It picks the key by `kid` from the header and
hands PyJWT that key's prepared object with that key's algorithm as the only allowed one, so
the cost stays one signature check plus PyJWT's own parsing.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import jwt
from jwt.types import Options

from app.config import Settings
from app.security.keys.provider import KeyRingProvider
from app.security.keys.ring import KeyRing

TOKEN_TYPE: Final = "at+jwt"
# RFC 9068 section 4: `typ` is "at+jwt" or its full media type, compared case-insensitively.
_ACCEPTED_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub")
# Claims only the codec sets: a caller passing them has a bug.
_CODEC_CLAIMS: Final = frozenset({"iss", "aud", "iat", "exp"})
# Claims listing what the subject holds, left out of a token when they list nothing.
_OMITTED_WHEN_EMPTY: Final = frozenset({"scope", "roles"})
# Our tokens are well under 2 KiB; refusing big ones early bounds the parsing work an
# anonymous caller can cause.
MAX_TOKEN_LENGTH: Final = 8192

# PyJWT's exceptions, most specific first, mapped to `InvalidAccessToken.reason`.
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.exceptions.InvalidSubjectError, "invalid_claim"),
    (jwt.exceptions.InvalidJTIError, "invalid_claim"),
    (jwt.InvalidIssuedAtError, "invalid_claim"),
)


class InvalidAccessToken(Exception):
    """The token is not a valid access token of this issuer.

    `reason` is short and machine-readable (`malformed`, `missing_kid`, `unknown_kid`,
    `algorithm_not_allowed`, `bad_signature`, `expired`, `not_yet_valid`, `missing_claim`,
    `wrong_issuer`, `wrong_audience`, `wrong_type`, `invalid_claim`); it never holds the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason_for(error: jwt.PyJWTError) -> str:
    for error_type, reason in _REASONS:
        if isinstance(error, error_type):
            return reason
    # DecodeError and the header checks (`kid` type, unsupported `crit`).
    return "malformed"


def _unverified_kid(token: str) -> str:
    """The header's `kid`, read only to choose the key; PyJWT parses the header again, strictly,
    and the signature covers it."""
    segment, dot, _ = token.partition(".")
    if not dot:
        raise InvalidAccessToken("malformed")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):
        raise InvalidAccessToken("malformed") from None
    if not isinstance(header, dict):
        raise InvalidAccessToken("malformed")
    kid = header.get("kid")
    if kid is None:
        raise InvalidAccessToken("missing_kid")
    if not isinstance(kid, str):
        raise InvalidAccessToken("malformed")
    return kid


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
        self._options: Options = {"require": list(required_claims)}

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
        # A compact JWT is ASCII; anything else (e.g. a lone surrogate from a JSON body) would
        # make PyJWT's UTF-8 encoding raise outside its own error handling.
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidAccessToken("malformed")
        key = self.keys.verification_key(_unverified_kid(token))
        if key is None:
            raise InvalidAccessToken("unknown_kid")
        try:
            decoded = jwt.decode_complete(
                token,
                key.public_key,
                algorithms=(key.algorithm,),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options=self._options,
            )
        except jwt.PyJWTError as error:
            raise InvalidAccessToken(_reason_for(error)) from error
        token_type = decoded["header"].get("typ")
        if not isinstance(token_type, str) or token_type.lower() not in _ACCEPTED_TYPES:
            raise InvalidAccessToken("wrong_type")
        claims: dict[str, Any] = decoded["payload"]
        return claims


def build_access_token_codec(settings: Settings) -> AccessTokenCodec:
    """The service's codec: keys per `load_key_ring`, reloaded when the key directory changes."""
    return AccessTokenCodec(
        KeyRingProvider.from_settings(settings),
        issuer=settings.issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
