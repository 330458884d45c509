"""Recent authentication (RFC 9470): sensitive operations need a credential proved lately.

Every access token of a session carries `auth_time`, when the session's user last proved a
credential (a password grant, a provider sign-in). A refresh keeps it; only a new sign-in
renews it. So a stolen access or refresh token keeps working for ordinary calls until it
expires or is revoked, but cannot start what needs the user to be present: linking another
provider, enrolling a second factor. With a confirmed second factor, the most sensitive
operations (password and email changes, removing the factor, new recovery codes, admin role
grants) also need the session to have passed it: a *step-up* to `acr` "aal2".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import InvalidCredentials
from app.services.tokens.assurance import AAL2


class ReauthenticationRequired(InvalidCredentials):
    """The caller is signed in, but not recently enough for this operation: sign in again.

    Answered as 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication",
    max_age=<max_age_seconds>` (RFC 9470 section 3).
    """

    default_detail = (
        "This operation needs a recent sign-in; sign in again (with your password or a "
        "provider) and retry within {max_age} seconds."
    )

    # The `acr` the operation needs, for the challenge's `acr_values` (None: any).
    acr_values: str | None = None

    def __init__(self, max_age_seconds: int) -> None:
        super().__init__(self.default_detail.format(max_age=max_age_seconds))
        self.max_age_seconds = max_age_seconds


class StepUpRequired(ReauthenticationRequired):
    """The user has a second factor, and this operation needs a session that passed it, begun
    recently: sign in again, with the second factor.

    Answered as 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication",
    acr_values="aal2", max_age=<max_age_seconds>` (RFC 9470 section 3).
    """

    default_detail = (
        "This operation needs a recent sign-in with your second factor; sign in again (password "
        "and code) and retry within {max_age} seconds."
    )
    acr_values = AAL2


def authenticated_seconds_ago(claims: Mapping[str, Any], now: datetime) -> int | None:
    """How many whole seconds ago the token's user proved a credential (its `auth_time`);
    None when the token has no usable `auth_time` (issued before the claim existed, or not
    a user's)."""
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int) or isinstance(auth_time, bool):
        return None
    return int(now.timestamp()) - auth_time


@dataclass(frozen=True, slots=True)
class RecentAuthentication:
    """This deployment's rule for sensitive operations: a credential proved at most
    `max_age_seconds` (`AUTH_REAUTH_MAX_AGE_SECONDS`) before `clock()`, and, for users with a
    second factor, proved with it."""

    max_age_seconds: int
    clock: Callable[[], datetime]

    def require(self, claims: Mapping[str, Any]) -> None:
        """Raise `ReauthenticationRequired` unless the access token `claims` show a
        credential proved recently enough."""
        age = authenticated_seconds_ago(claims, self.clock())
        if age is None or age > self.max_age_seconds:
            raise ReauthenticationRequired(self.max_age_seconds)

    def require_step_up(self, claims: Mapping[str, Any], *, has_second_factor: bool) -> None:
        """For a user with a confirmed second factor (`has_second_factor`), raise
        `StepUpRequired` unless the access token `claims` show a session that passed it
        (`acr` "aal2") begun recently enough. Without a second factor there is nothing to step
        up to: the operation's own checks (such as `current_password`) stand."""
        if not has_second_factor:
            return
        age = authenticated_seconds_ago(claims, self.clock())
        if claims.get("acr") != AAL2 or age is None or age > self.max_age_seconds:
            raise StepUpRequired(self.max_age_seconds)
