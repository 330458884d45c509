"""Who is calling: an access token checked against its signature and the database's truth.

This runs on every authenticated request, so it reads with one prebuilt Core query over a
plain connection (`app.repositories.accounts.credential_checks`) and returns a plain snapshot
of the user; and it first asks the token-state cache (`token_state_cache`), which answers
only while it is provably current, so a revoked token is refused everywhere within a second.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import InvalidCredentials
from app.repositories.accounts import credential_checks
from app.repositories.accounts.credential_checks import CurrentUser
from app.services.common.authorization import Actor
from app.services.tokens.token_state_cache import TokenStateCache

T = TypeVar("T")


class AccessTokenDecoder(Protocol):
    def decode(self, token: str) -> dict[str, Any]: ...


class NotAuthenticated(InvalidCredentials):
    default_detail = "A valid access token is required."


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, as established from a verified access token."""

    user: CurrentUser
    session_id: uuid.UUID
    claims: Mapping[str, Any]


class Authenticator:
    """Verifies access tokens. Read-only: one query on a short-lived connection, no ORM
    session (creating and closing one costs more than the query on this hot path)."""

    def __init__(
        self,
        engine: AsyncEngine,
        decoder: AccessTokenDecoder,
        cache: TokenStateCache | None = None,
    ) -> None:
        self.engine = engine
        self.decoder = decoder
        self.cache = cache if cache is not None else TokenStateCache.disabled()

    async def authenticate(self, token: str) -> Principal:
        """The principal behind `token`, or `NotAuthenticated`.

        Beyond the signature and claims, the token must still be current: its user active,
        its session not ended, and its token version not bumped (logout-all, password change).
        """
        return await self.principal_for(self.decode(token))

    async def actor(self, token: str) -> Actor:
        """The user or service client behind `token`, with what they may do right now, or
        `NotAuthenticated`. A user's permissions come from their roles in the database, a
        service client's from the scopes it was issued that it still holds."""
        claims = self.decode(token)
        if "sid" not in claims:  # a service client's own token (client-credentials grant)
            scopes = await self.client_scopes(claims)
            return Actor(
                id=None, is_superuser=False, permissions=scopes, client_id=str(claims["sub"])
            )
        user = (await self.principal_for(claims)).user
        permissions: frozenset[str] = frozenset()
        if not user.is_superuser:
            permissions = await self.permissions_of(user)
        return Actor(
            id=user.id,
            is_superuser=user.is_superuser,
            permissions=permissions,
            claims=claims,
            has_second_factor=user.mfa_enabled,
        )

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

        state = self.cache.user_state(user_id, session_id)
        if state is None:
            generation = self.cache.generation
            state = await self._read(
                lambda read: credential_checks.user_token_state(read, user_id, session_id),
                connection,
            )
            if state is not None:
                self.cache.store_user_state(user_id, session_id, state, generation)
        if (
            state is None
            or state.session_revoked_at is not None
            or not state.user.is_active
            or state.token_version != version
        ):
            raise NotAuthenticated
        return Principal(user=state.user, session_id=session_id, claims=claims)

    async def client_scopes(
        self, claims: Mapping[str, Any], *, connection: AsyncConnection | None = None
    ) -> frozenset[str]:
        """What a service client's token may do right now: the scopes it was issued that the
        client still holds, or `NotAuthenticated` once the token is revoked or the client is
        disabled or deleted. Reads through `connection` when given, else on its own."""
        client_id, jti = str(claims["sub"]), str(claims.get("jti", ""))
        state = self.cache.client_state(client_id, jti)
        if state is None:
            generation = self.cache.generation
            state = await self._read(
                lambda read: credential_checks.client_token_state(read, client_id, jti),
                connection,
            )
            if state is not None:
                self.cache.store_client_state(client_id, jti, state, generation)
        if state is None or not state.is_active or state.is_revoked:
            raise NotAuthenticated
        return frozenset(str(claims.get("scope", "")).split()) & frozenset(state.scopes)

    async def _read(
        self,
        read: Callable[[AsyncConnection], Awaitable[T]],
        connection: AsyncConnection | None,
    ) -> T:
        if connection is None:
            async with self.engine.connect() as own:
                return await read(own)
        return await read(connection)

    async def permissions_of(self, user: CurrentUser) -> frozenset[str]:
        """What the user may do right now: read from the roles in the database, not from the
        token, so a revoked permission stops working at once."""
        cached = self.cache.permissions(user.id)
        if cached is not None:
            return cached
        generation = self.cache.generation
        async with self.engine.connect() as connection:
            permissions = await credential_checks.permission_codenames(connection, user.id)
        self.cache.store_permissions(user.id, permissions, generation)
        return permissions
