"""Which scopes a user may hold right now: a building block of the grants and introspection.

A scope is either basic (any signed-in user may have it) or a permission codename, which the
user must hold through a role at the time of asking (a superuser holds every permission).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import PermissionRepository

# OpenID Connect: asking for it earns an ID token beside the access token.
OPENID = "openid"
# Asks for a refresh token (OpenID Connect Core 11): a third-party client gets one only when
# the user granted it.
OFFLINE_ACCESS = "offline_access"
# Scopes any signed-in user may ask for; everything else must be a permission they hold.
# `profile` and `email` choose the claims of the ID token and userinfo.
BASIC_SCOPES = frozenset({OPENID, "profile", "email", OFFLINE_ACCESS})


class UserScopes:
    def __init__(self, session: AsyncSession) -> None:
        self.permissions = PermissionRepository(session)

    async def narrow(self, scope: str, *, user_id: uuid.UUID, is_superuser: bool) -> str:
        """The part of the space-separated `scope` the user may have now, sorted.

        Basic scopes need no query: a sign-in or a token that asks for nothing more costs no
        round trip.
        """
        wanted = set(scope.split())
        if wanted <= BASIC_SCOPES:
            return " ".join(sorted(wanted))
        held = (
            await self.permissions.all_codenames()
            if is_superuser
            else await self.permissions.codenames_for_user(user_id)
        )
        return " ".join(sorted(wanted & (BASIC_SCOPES | held)))
