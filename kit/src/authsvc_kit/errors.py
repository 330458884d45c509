"""The ways checking a caller fails: the token is bad, authsvc could not be asked, or the
token is good but the user's sign-in is not strong or recent enough for the route."""

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


class InsufficientUserAuthentication(Exception):
    """The token is valid, but the user's sign-in does not meet the route's requirement (RFC
    9470 step-up): its `acr` is not among `acr_values`, or its `auth_time` is missing or more
    than `max_age` seconds ago.

    `acr_values` and `max_age` are what the route requires (empty / None when it requires no
    such thing), whichever of them failed: the client signs the user in again accordingly and
    retries. `description` says in words what is missing. Answered as 401 with the header
    `challenge()` builds.
    """

    def __init__(
        self, description: str, *, acr_values: tuple[str, ...] = (), max_age: int | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.acr_values = acr_values
        self.max_age = max_age

    def challenge(self, realm: str | None = None) -> str:
        """The `WWW-Authenticate` value of the 401 (RFC 9470 section 3): `Bearer
        error="insufficient_user_authentication", error_description="...",
        acr_values="aal2", max_age=300`, with `acr_values` only when an acr is required and
        `max_age` only when a maximum age is."""
        parameters = [f'realm="{realm}"'] if realm else []
        parameters += [
            'error="insufficient_user_authentication"',
            f'error_description="{self.description}"',
        ]
        if self.acr_values:
            parameters.append(f'acr_values="{" ".join(self.acr_values)}"')
        if self.max_age is not None:
            parameters.append(f"max_age={self.max_age}")
        return "Bearer " + ", ".join(parameters)
