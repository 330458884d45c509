"""What checking a presented credential reads: an access token's user and session, a client
token's client, a client's stored secret, a user's permissions.

These run on every authenticated request, introspection and client authentication, so each
is one Core statement built once with bind parameters (constructing ORM expressions per
request costs more than executing the cached, prepared statement), run over a plain
`AsyncConnection`: no ORM session, identity map or lazy loads. Read-only; nothing here writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, Uuid, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

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
    mfa_enabled: bool = False


@dataclass(frozen=True, slots=True)
class UserTokenState:
    """The user and session an access token names, as the database has them now."""

    user: CurrentUser
    token_version: int
    session_revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClientTokenState:
    """A service client's token as the database has it now: the client's state, and whether
    this very token was revoked."""

    is_active: bool
    scopes: list[str]
    is_revoked: bool


@dataclass(frozen=True, slots=True)
class StoredClientCredentials:
    """What a registered client's presented secret is checked against (None for a public
    client, which has none), and what it may do once it is."""

    client_id: str
    secret_hash: str | None
    scopes: list[str]
    audiences: list[str]
    is_active: bool
    grant_types: list[str]
    token_endpoint_auth_method: str
    is_first_party: bool


# One round trip: the user, the session's revocation state and the role names (one row per
# role; a user without roles still yields one row through the outer joins).
_USER_TOKEN_STATE = (
    select(
        User.id,
        User.email,
        User.username,
        User.full_name,
        User.is_active,
        User.is_verified,
        User.is_superuser,
        User.created_at,
        User.mfa_enabled,
        User.token_version,
        UserSession.revoked_at,
        Role.name.label("role_name"),
    )
    .join(UserSession, UserSession.user_id == User.id)
    .outerjoin(user_roles, user_roles.c.user_id == User.id)
    .outerjoin(Role, Role.id == user_roles.c.role_id)
    .where(
        User.id == bindparam("user_id", type_=Uuid()),
        UserSession.id == bindparam("session_id", type_=Uuid()),
    )
)

# The permissions a user holds through their roles.
_PERMISSION_CODENAMES = (
    select(Permission.codename)
    .join(role_permissions, role_permissions.c.permission_id == Permission.id)
    .join(user_roles, user_roles.c.role_id == role_permissions.c.role_id)
    .where(user_roles.c.user_id == bindparam("user_id", type_=Uuid()))
    .distinct()
)

# A client's token: the client's state and whether this very token was revoked, in one trip.
_CLIENT_TOKEN_STATE = select(
    ServiceClient.is_active,
    ServiceClient.scopes,
    exists().where(RevokedAccessToken.jti == bindparam("jti", type_=String())).label("is_revoked"),
).where(ServiceClient.client_id == bindparam("client_id", type_=String()))

_STORED_CLIENT_CREDENTIALS = select(
    ServiceClient.client_id,
    ServiceClient.secret_hash,
    ServiceClient.scopes,
    ServiceClient.audiences,
    ServiceClient.is_active,
    ServiceClient.grant_types,
    ServiceClient.token_endpoint_auth_method,
    ServiceClient.is_first_party,
).where(ServiceClient.client_id == bindparam("client_id", type_=String()))


async def user_token_state(
    connection: AsyncConnection, user_id: uuid.UUID, session_id: uuid.UUID
) -> UserTokenState | None:
    """The user `user_id` with their session `session_id` and role names (sorted), or None
    when there is no such user, or no such session of theirs."""
    parameters = {"user_id": user_id, "session_id": session_id}
    rows = (await connection.execute(_USER_TOKEN_STATE, parameters)).all()
    if not rows:
        return None
    first = rows[0]
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
        mfa_enabled=first.mfa_enabled,
    )
    return UserTokenState(user, first.token_version, session_revoked_at=first.revoked_at)


async def permission_codenames(connection: AsyncConnection, user_id: uuid.UUID) -> frozenset[str]:
    """The codenames of the permissions the user holds through their roles."""
    rows = await connection.execute(_PERMISSION_CODENAMES, {"user_id": user_id})
    return frozenset(rows.scalars().all())


async def client_token_state(
    connection: AsyncConnection, client_id: str, jti: str
) -> ClientTokenState | None:
    """The client `client_id` and whether its token `jti` was revoked, or None when there is
    no such client."""
    parameters = {"client_id": client_id, "jti": jti}
    row = (await connection.execute(_CLIENT_TOKEN_STATE, parameters)).first()
    if row is None:
        return None
    return ClientTokenState(
        is_active=row.is_active, scopes=list(row.scopes), is_revoked=row.is_revoked
    )


async def stored_client_credentials(
    connection: AsyncConnection, client_id: str
) -> StoredClientCredentials | None:
    """The stored secret digest, scopes and grant types of the client `client_id`, or None."""
    row = (await connection.execute(_STORED_CLIENT_CREDENTIALS, {"client_id": client_id})).first()
    if row is None:
        return None
    return StoredClientCredentials(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        scopes=list(row.scopes),
        audiences=list(row.audiences),
        is_active=row.is_active,
        grant_types=list(row.grant_types),
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        is_first_party=row.is_first_party,
    )
