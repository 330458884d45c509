"""The OpenID Connect userinfo answer (OIDC Core 5.3): the claims about the signed-in user
that the access token's scopes allow, as the account is now."""

from __future__ import annotations

from typing import Any

from app.errors import PermissionDenied
from app.services.tokens.bearer_authentication import Principal
from app.services.tokens.identity_claims import identity_claims
from app.services.tokens.scopes import OPENID


class InsufficientScope(PermissionDenied):
    """The access token lacks a scope the request needs (RFC 6750 section 3.1)."""

    def __init__(self, *missing: str) -> None:
        super().__init__(f"This requires an access token with the scope {' '.join(missing)}.")
        self.missing = missing


def userinfo_claims(principal: Principal) -> dict[str, Any]:
    """`sub` (as in the caller's ID tokens) and the claims the token's scope allows, by the
    ID token's rules, read from the account as it is now (the principal was read from the
    database while authenticating: a changed email shows at once). `InsufficientScope`
    unless the token's scope has `openid`."""
    scopes = str(principal.claims.get("scope", "")).split()
    if OPENID not in scopes:
        raise InsufficientScope(OPENID)
    return {"sub": str(principal.user.id), **identity_claims(scopes, principal.user)}
