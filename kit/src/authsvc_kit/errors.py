"""The two ways verification fails: the token is bad, or authsvc could not be asked."""

from __future__ import annotations


class InvalidToken(Exception):
    """The token is not a valid, current access token of the configured issuer.

    `reason` is short and machine-readable, the same vocabulary as the service's own checks:
    `malformed`, `missing_kid`, `unknown_kid`, `algorithm_not_allowed`, `bad_signature`,
    `expired`, `not_yet_valid`, `missing_claim`, `invalid_claim`, `wrong_issuer`,
    `wrong_audience`, `wrong_type`, and `inactive` (introspection said the token is no longer
    valid: logged out, revoked, user deactivated). It never holds the token itself.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthsvcUnavailable(Exception):
    """authsvc could not be asked: the JWKS or the introspection endpoint did not answer, or
    answered something unusable (including a refused client authentication).

    Not the caller's fault: a resource server answers 503, not 401.
    """
