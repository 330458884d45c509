"""The checks every verifier of authsvc's access tokens applies, in one place.

authsvc's own codec (`app.security.access_tokens`) and this kit's `TokenVerifier` both build on
these: what size and alphabet a token may have, how its header is read to choose the key, which
`typ` an access token carries, which claims are required, and how PyJWT's refusals map to an
`InvalidToken` reason. Each verifier only decides where its keys come from.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Final

import jwt
from jwt.algorithms import AllowedPublicKeys

from authsvc_kit.errors import InvalidToken

TOKEN_TYPE: Final = "at+jwt"
# RFC 9068 section 4: "at+jwt" or its full media type, compared case-insensitively.
ACCEPTED_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub")
# authsvc's tokens are well under 2 KiB; refusing big ones before parsing bounds the work an
# anonymous caller can cause.
MAX_TOKEN_LENGTH: Final = 8192

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


def reason_for(error: jwt.PyJWTError) -> str:
    """The `InvalidToken.reason` for a refusal of PyJWT's; `malformed` for a `DecodeError` and
    PyJWT's header checks (`crit`, `kid` type)."""
    for error_type, reason in _REASONS:
        if isinstance(error, error_type):
            return reason
    return "malformed"


def check_size(token: str, max_length: int = MAX_TOKEN_LENGTH) -> None:
    """`InvalidToken("malformed")` unless `token` is ASCII and at most `max_length` long.

    A compact JWT is ASCII; anything else (e.g. a lone surrogate from a JSON body) would make
    PyJWT's UTF-8 encoding raise outside its own error handling.
    """
    if len(token) > max_length or not token.isascii():
        raise InvalidToken("malformed")


def header_segment(token: str) -> str:
    """The first (header) segment of a compact JWT; `InvalidToken("malformed")` without one."""
    end = token.find(".")
    if end < 0:
        raise InvalidToken("malformed")
    return token[:end]


def unverified_header(segment: str) -> dict[str, Any]:
    """The JSON object of a header segment, read unverified only to choose the key: PyJWT
    parses it again, strictly, and the signature covers it. `InvalidToken("malformed")` if it
    is not base64url-encoded JSON object."""
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):
        raise InvalidToken("malformed") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed")
    return header


def key_id(header: dict[str, Any]) -> str:
    """The header's `kid`: `InvalidToken("missing_kid")` without one, `malformed` if it is not
    a string. Only the key that `kid` names verifies the token."""
    kid = header.get("kid")
    if kid is None:
        raise InvalidToken("missing_kid")
    if not isinstance(kid, str):
        raise InvalidToken("malformed")
    return kid


def check_type(header: dict[str, Any]) -> None:
    """`InvalidToken("wrong_type")` unless the header's `typ` names an RFC 9068 access token."""
    token_type = header.get("typ")
    if not isinstance(token_type, str) or token_type.lower() not in ACCEPTED_TYPES:
        raise InvalidToken("wrong_type")


def claims_decoder(required_claims: Sequence[str] = REQUIRED_CLAIMS) -> jwt.PyJWT:
    """A PyJWT decoder requiring `required_claims`; its options are set once, so no call merges
    them again."""
    return jwt.PyJWT(options={"require": list(required_claims)})


def decode_verified(
    decoder: jwt.PyJWT,
    token: str,
    key: AllowedPublicKeys | jwt.PyJWK,
    algorithms: Sequence[str],
    *,
    audience: str,
    issuer: str,
    leeway: float,
) -> dict[str, Any]:
    """The verified `header` and `payload` of `token` (PyJWT's complete decoding), or
    `InvalidToken` with the reason PyJWT's refusal maps to.

    `algorithms` are the key's own (one algorithm per key), never the header's `alg`: so
    `alg: none` and HMAC-with-the-public-key forgeries cannot pass. `iss` and `aud` must match,
    `exp`, `iat` and `nbf` hold within `leeway` seconds.
    """
    try:
        return decoder.decode_complete(
            token,
            key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(reason_for(error)) from error
