"""The OpenID Connect standard claims about a user that a token's scopes allow (OIDC Core 5.4):
one rule for the ID token and for userinfo, so both say the same."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol


class IdentifiedUser(Protocol):
    """What the claims are read from: a user row, or the user as read while authenticating."""

    @property
    def email(self) -> str: ...
    @property
    def is_verified(self) -> bool: ...
    @property
    def full_name(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...


def identity_claims(scopes: Collection[str], user: IdentifiedUser) -> dict[str, Any]:
    """`email` and `email_verified` with scope `email`; `name` and `preferred_username` with
    scope `profile`, each left out when the account has none. `sub` is the caller's to add."""
    claims: dict[str, Any] = {}
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = user.is_verified
    if "profile" in scopes:
        if user.full_name is not None:
            claims["name"] = user.full_name
        if user.username is not None:
            claims["preferred_username"] = user.username
    return claims
