"""Local verification of authsvc's access tokens (RFC 9068 JWTs) against its published keys.

As strict as the service's own check: the key is the one the header's `kid` names, and only
that key's algorithm is allowed (if it is among the configured ones), whatever the header's
`alg` claims, so `alg: none` and HMAC-signed-with-the-public-key forgeries cannot pass;
`typ` must be `at+jwt`; `exp`, `iat`, `iss`, `aud` and `sub` are required and checked. The
checks themselves are `authsvc_kit.rules`, which the service's codec applies too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from authsvc_kit import rules
from authsvc_kit.claims import Claims
from authsvc_kit.errors import InvalidToken
from authsvc_kit.jwks import JWKSCache, VerificationKey
from authsvc_kit.rules import MAX_TOKEN_LENGTH

DEFAULT_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")
DEFAULT_LEEWAY: Final = 30.0
# Header segments already checked, by kid; see `TokenVerifier._checked_kid`.
_HEADER_CACHE_SIZE: Final = 64


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
        self._jwt = rules.claims_decoder()
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
        rules.check_size(token, self.max_token_length)
        segment = rules.header_segment(token)
        kid = self._checked_headers.get(segment)
        if kid is not None:
            return kid
        header = rules.unverified_header(segment)
        rules.check_type(header)
        kid = rules.key_id(header)
        if self.jwks.cached_key(kid) is not None:
            if len(self._checked_headers) >= _HEADER_CACHE_SIZE:
                self._checked_headers.clear()  # headers of keys rotated out long ago, or junk
            self._checked_headers[segment] = kid
        return kid

    def _decode(self, token: str, key: VerificationKey) -> Claims:
        if key.algorithm not in self.algorithms:
            raise InvalidToken("algorithm_not_allowed")
        decoded = rules.decode_verified(
            self._jwt,
            token,
            key.jwk,
            key.algorithms,  # the key's own algorithm, never the header's
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
        )
        return Claims(decoded["payload"])
