"""Who is calling: an access token checked against its signature and the database's truth.

This runs on every authenticated request, so it reads with one Core query (no ORM identity
map, no lazy loads) and returns a plain snapshot of the user.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Executable, String, Uuid, bindparam, exists, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.models import (
    Permission,
    RevokedAccessToken,
    Role,
    ServiceClient,
    User,
    UserSession,
    role_permissions,
    user_roles,
)
from app.services.errors import InvalidCredentials


class AccessTokenDecoder(Protocol):
    def decode(self, token: str) -> dict[str, Any]: ...


class NotAuthenticated(InvalidCredentials):
    default_detail = "A valid access token is required."


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The caller's account as read while authenticating the request."""

    id: uuid.UUID
    email: str
    username: str | None
    full_name: str | None
    is_active: bool
    is_verified: bool
    is_superuser: bool
    roles: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, as established from a verified access token."""

    user: CurrentUser
    session_id: uuid.UUID
    claims: Mapping[str, Any]


_USER_COLUMNS = (
    User.id,
    User.email,
    User.username,
    User.full_name,
    User.is_active,
    User.is_verified,
    User.is_superuser,
    User.created_at,
    User.token_version,
    UserSession.revoked_at,
    Role.name.label("role_name"),
)

# One round trip: the user, the session's revocation state and the role names (one row per
# role; a user without roles still yields one row through the outer joins).
# Built once with bind parameters: constructing ORM expressions per request costs more than
# executing the (cached, prepared) statement.
_AUTHENTICATE = (
    select(*_USER_COLUMNS)
    .join(UserSession, UserSession.user_id == User.id)
    .outerjoin(user_roles, user_roles.c.user_id == User.id)
    .outerjoin(Role, Role.id == user_roles.c.role_id)
    .where(
        User.id == bindparam("user_id", type_=Uuid()),
        UserSession.id == bindparam("session_id", type_=Uuid()),
    )
)


# The permissions a user holds through their roles, for the admin routes' checks.
_PERMISSIONS = (
    select(Permission.codename)
    .join(role_permissions, role_permissions.c.permission_id == Permission.id)
    .join(user_roles, user_roles.c.role_id == role_permissions.c.role_id)
    .where(user_roles.c.user_id == bindparam("user_id", type_=Uuid()))
    .distinct()
)


# A client's token: the client's state and whether this very token was revoked, in one trip.
_CLIENT = select(
    ServiceClient.is_active,
    ServiceClient.scopes,
    exists().where(RevokedAccessToken.jti == bindparam("jti", type_=String())).label("is_revoked"),
).where(ServiceClient.client_id == bindparam("client_id", type_=String()))


class Authenticator:
    """Verifies access tokens. Read-only: one query on a short-lived connection, no ORM
    session (creating and closing one costs more than the query on this hot path)."""

    def __init__(self, engine: AsyncEngine, decoder: AccessTokenDecoder) -> None:
        self.engine = engine
        self.decoder = decoder

    async def authenticate(self, token: str) -> Principal:
        """The principal behind `token`, or `NotAuthenticated`.

        Beyond the signature and claims, the token must still be current: its user active,
        its session not ended, and its token version not bumped (logout-all, password change).
        """
        return await self.principal_for(self.decode(token))

    def decode(self, token: str) -> Mapping[str, Any]:
        """The verified claims of `token`, or `NotAuthenticated`."""
        try:
            return self.decoder.decode(token)
        except Exception as exc:  # any decode problem is the same 401
            raise NotAuthenticated from exc

    async def principal_for(
        self, claims: Mapping[str, Any], *, connection: AsyncConnection | None = None
    ) -> Principal:
        """The principal behind verified access-token `claims`, if they are still current.
        Reads through `connection` when given, else on a connection of its own."""
        try:
            user_id = uuid.UUID(str(claims["sub"]))
            session_id = uuid.UUID(str(claims["sid"]))
            version = int(claims["ver"])
        except (KeyError, ValueError, TypeError) as exc:  # a client's token, or a bad claim
            raise NotAuthenticated from exc

        parameters = {"user_id": user_id, "session_id": session_id}
        rows = await self._rows(_AUTHENTICATE, parameters, connection)
        if not rows:
            raise NotAuthenticated
        first = rows[0]
        if first.revoked_at is not None or not first.is_active or first.token_version != version:
            raise NotAuthenticated
        user = CurrentUser(
            id=first.id,
            email=first.email,
            username=first.username,
            full_name=first.full_name,
            is_active=first.is_active,
            is_verified=first.is_verified,
            is_superuser=first.is_superuser,
            roles=sorted(row.role_name for row in rows if row.role_name is not None),
            created_at=first.created_at,
        )
        return Principal(user=user, session_id=session_id, claims=claims)

    async def client_scopes(
        self, claims: Mapping[str, Any], *, connection: AsyncConnection | None = None
    ) -> frozenset[str]:
        """What a service client's token may do right now: the scopes it was issued that the
        client still holds, or `NotAuthenticated` once the token is revoked or the client is
        disabled or deleted. Reads through `connection` when given, else on its own."""
        parameters = {"client_id": str(claims["sub"]), "jti": str(claims.get("jti", ""))}
        rows = await self._rows(_CLIENT, parameters, connection)
        if not rows or not rows[0].is_active or rows[0].is_revoked:
            raise NotAuthenticated
        return frozenset(str(claims.get("scope", "")).split()) & frozenset(rows[0].scopes)

    async def _rows(
        self,
        statement: Executable,
        parameters: Mapping[str, Any],
        connection: AsyncConnection | None,
    ) -> list[Row[Any]]:
        if connection is None:
            async with self.engine.connect() as own:
                return list((await own.execute(statement, parameters)).all())
        return list((await connection.execute(statement, parameters)).all())

    async def permissions_of(self, user: CurrentUser) -> frozenset[str]:
        """What the user may do right now: read from the roles in the database, not from the
        token, so a revoked permission stops working at once."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(_PERMISSIONS, {"user_id": user.id})
            return frozenset(rows.scalars().all())
