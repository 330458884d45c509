"""Step-up checks (RFC 9470): is the user's sign-in strong and recent enough for a route?

authsvc's user tokens (and its introspection answers) say how the user signed in: `acr`
(`"aal1"` for a password or a provider, `"aal2"` with a second factor) and `auth_time` (when the
user last proved a credential; a refresh keeps it). A route that moves money or changes
credentials can require `acr_values=("aal2",)` and/or `max_age=300`; a token that falls short is
refused with `InsufficientUserAuthentication`, whose `challenge()` tells the client what sign-in
to ask the user for (`WWW-Authenticate: Bearer error="insufficient_user_authentication",
error_description="...", acr_values="aal2", max_age=300`). Client-credentials tokens have
neither claim, so a route requiring either refuses them.

`max_age` allows `leeway` seconds of clock skew between authsvc, which dates `auth_time`, and
this server, which reads the time now: by default the verifier's 30 s, so `max_age=300` accepts
a sign-in up to 330 s old by this server's clock.

Without FastAPI (Starlette or any other framework)::

    try:
        check_authentication(claims, acr_values="aal2", max_age=300)
    except InsufficientUserAuthentication as refused:
        return Response(status_code=401, headers={"WWW-Authenticate": refused.challenge()})
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from authsvc_kit.claims import Claims
from authsvc_kit.errors import InsufficientUserAuthentication
from authsvc_kit.verifier import DEFAULT_LEEWAY

# An acr value is sent in a quoted, space-separated challenge parameter: printable ASCII
# without spaces, double quotes or backslashes.
_ACR_VALUE: Final = re.compile(r"[!#-\[\]-~]+")


@dataclass(frozen=True, slots=True)
class AuthenticationRequirement:
    """What a route requires of the user's sign-in: an `acr` among `acr_values` (none
    required when empty), an `auth_time` at most `max_age` seconds old (none when None).

    `of` builds one from the forms the public API takes; the constructor checks the values, so
    a bad requirement fails when the route is declared, not when a request comes.
    """

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None

    def __post_init__(self) -> None:
        for value in self.acr_values:
            if not isinstance(value, str) or not _ACR_VALUE.fullmatch(value):
                raise ValueError(f"not a usable acr value: {value!r}")
        if self.max_age is not None and (
            not isinstance(self.max_age, int) or isinstance(self.max_age, bool) or self.max_age < 0
        ):
            raise ValueError(
                f"max_age must be a whole number of seconds >= 0, not {self.max_age!r}"
            )

    @classmethod
    def of(
        cls, acr_values: str | Iterable[str] = (), max_age: int | None = None
    ) -> AuthenticationRequirement:
        """The requirement for `acr_values` (a space-separated string, as OpenID Connect's
        `acr_values` parameter, or an iterable; duplicates dropped, order kept: it is the
        order of preference the challenge sends) and `max_age` (seconds)."""
        values = acr_values.split() if isinstance(acr_values, str) else acr_values
        return cls(tuple(dict.fromkeys(values)), max_age)

    @property
    def is_required(self) -> bool:
        """Whether anything is required at all."""
        return bool(self.acr_values) or self.max_age is not None

    def check(
        self, claims: Mapping[str, Any], *, now: float | None = None, leeway: float = DEFAULT_LEEWAY
    ) -> None:
        """Raise `InsufficientUserAuthentication` unless `claims` (a token's or an
        introspection answer's) meet the requirement at `now` (Unix time, default the current
        time): an `acr` among `acr_values`, and an `auth_time` no more than `max_age + leeway`
        seconds before `now`."""
        if not self.is_required:
            return
        if not math.isfinite(leeway) or leeway < 0:
            raise ValueError(f"leeway must be >= 0 seconds, not {leeway!r}")
        view = claims if isinstance(claims, Claims) else Claims(dict(claims))
        acr_unmet = bool(self.acr_values) and view.acr not in self.acr_values
        age_unmet = False
        if self.max_age is not None:
            auth_time = view.auth_time
            now = time.time() if now is None else now
            age_unmet = auth_time is None or now - auth_time > self.max_age + leeway
        if acr_unmet or age_unmet:
            raise InsufficientUserAuthentication(
                self._describe(acr_unmet=acr_unmet, age_unmet=age_unmet),
                acr_values=self.acr_values,
                max_age=self.max_age,
            )

    def _describe(self, *, acr_unmet: bool, age_unmet: bool) -> str:
        needed = "a sign-in"
        if acr_unmet:
            needed += " at " + " or ".join(self.acr_values)
        if age_unmet:
            needed += f" within the last {self.max_age} seconds"
        return needed + " is required"


def check_authentication(
    claims: Mapping[str, Any],
    *,
    acr_values: str | Iterable[str] = (),
    max_age: int | None = None,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> None:
    """Raise `InsufficientUserAuthentication` unless the verified `claims` show a sign-in at
    one of `acr_values` (`"aal2"`, or several in order of preference) and no more than
    `max_age` seconds before `now` (Unix time, default the current time), give or take
    `leeway` seconds of clock skew (default: the verifier's 30 s). Requiring nothing passes.

    Use the claims the route trusts: `kit.verify(token)`'s, or `kit.introspect(token)`'s
    where revocation is checked. `ValueError` for an unusable requirement.
    """
    AuthenticationRequirement.of(acr_values, max_age).check(claims, now=now, leeway=leeway)
