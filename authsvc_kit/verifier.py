"""Local verification of authsvc's access tokens (RFC 9068 JWTs) against its published keys.

As strict as the service's own check: the key is the one the header's `kid` names, and only
that key's algorithm is allowed (if it is among the configured ones), whatever the header's
`alg` claims, so `alg: none` and HMAC-signed-with-the-public-key forgeries cannot pass;
`typ` must be `at+jwt`; `exp`, `iat`, `iss`, `aud` and `sub` are required and checked.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Final

import jwt

from authsvc_kit.claims import Claims
from authsvc_kit.errors import InvalidToken
from authsvc_kit.jwks import JWKSCache, VerificationKey

DEFAULT_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")
REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub")
DEFAULT_LEEWAY: Final = 30.0
# authsvc's tokens are well under 2 KiB; refusing big ones before parsing bounds the work an
# anonymous caller can cause (the service refuses the same length).
MAX_TOKEN_LENGTH: Final = 8192
# Header segments already checked, by kid; see `TokenVerifier._checked_kid`.
_HEADER_CACHE_SIZE: Final = 64
# RFC 9068 section 4: "at+jwt" or its full media type, compared case-insensitively.
_ACCEPTED_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})

# PyJWT's exceptions, most specific first, mapped to `InvalidToken.reason`.
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


def _reason_for(error: jwt.PyJWTError) -> str:
    for error_type, reason in _REASONS:
        if isinstance(error, error_type):
            return reason
    return "malformed"  # DecodeError and PyJWT's header checks (`crit`, `kid` type)


class TokenVerifier:
    """Verifies access tokens of one issuer for one audience with the keys of a `JWKSCache`.

    `algorithms` limits which published keys are used at all; `leeway` (seconds) absorbs
    clock skew in the `exp`, `iat` and `nbf` checks.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: JWKSCache,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = DEFAULT_LEEWAY,
        max_token_length: int = MAX_TOKEN_LENGTH,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self.max_token_length = max_token_length
        # The options live on a private PyJWT instance, so no call merges them again.
        self._jwt = jwt.PyJWT(options={"require": list(REQUIRED_CLAIMS)})
        # Every token signed by one key has the same header segment: once it passed the checks
        # below, its kid is a dict lookup away. Only headers naming a cached key get in, and
        # at most _HEADER_CACHE_SIZE of them: made-up headers cannot grow it, and at worst
        # push verification back to parsing every header.
        self._checked_headers: dict[str, str] = {}

    async def verify(self, token: str) -> Claims:
        """The claims of `token` if it is a valid access token of this issuer for this
        audience; `InvalidToken` otherwise.

        A kid missing from the cache makes the JWKS cache refetch (rate-limited);
        `AuthsvcUnavailable` if no key set could ever be fetched.
        """
        kid = self._checked_kid(token)
        key = self.jwks.cached_key(kid)
        if key is None or self.jwks.is_stale():
            key = await self.jwks.get_key(kid)
            if key is None:
                raise InvalidToken("unknown_kid")
        return self._decode(token, key)

    def verify_cached(self, token: str) -> Claims:
        """Like `verify`, from the keys already cached only (no I/O, usable from sync code):
        a kid not in the cache is `InvalidToken("unknown_kid")`."""
        key = self.jwks.cached_key(self._checked_kid(token))
        if key is None:
            raise InvalidToken("unknown_kid")
        return self._decode(token, key)

    def _checked_kid(self, token: str) -> str:
        """The header's `kid`, after the length and `typ` checks. The header is read unverified
        only to choose the key; PyJWT parses it again strictly, and the signature covers it."""
        # A compact JWT is ASCII; anything else would make PyJWT's UTF-8 encoding raise.
        if len(token) > self.max_token_length or not token.isascii():
            raise InvalidToken("malformed")
        end = token.find(".")
        if end < 0:
            raise InvalidToken("malformed")
        segment = token[:end]
        kid = self._checked_headers.get(segment)
        if kid is not None:
            return kid
        try:
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, RecursionError):
            raise InvalidToken("malformed") from None
        if not isinstance(header, dict):
            raise InvalidToken("malformed")
        token_type = header.get("typ")
        if not isinstance(token_type, str) or token_type.lower() not in _ACCEPTED_TYPES:
            raise InvalidToken("wrong_type")
        kid = header.get("kid")
        if kid is None:
            raise InvalidToken("missing_kid")
        if not isinstance(kid, str):
            raise InvalidToken("malformed")
        if self.jwks.cached_key(kid) is not None:
            if len(self._checked_headers) >= _HEADER_CACHE_SIZE:
                self._checked_headers.clear()  # headers of keys rotated out long ago, or junk
            self._checked_headers[segment] = kid
        return kid

    def _decode(self, token: str, key: VerificationKey) -> Claims:
        if key.algorithm not in self.algorithms:
            raise InvalidToken("algorithm_not_allowed")
        try:
            claims = self._jwt.decode(
                token,
                key.jwk,
                algorithms=key.algorithms,  # the key's own algorithm, never the header's
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(_reason_for(error)) from error
        return Claims(claims)
