"""RFC 7662 token introspection: whether a token is active right now, and what it says.

Anything not currently valid is `{"active": false}` with nothing else: expired, forged,
foreign, revoked, logged out, older than the user's token version, or belonging to a
deactivated or deleted user or a disabled or deleted client. An active token's `scope` is what
its subject may have now: a permission taken from the user or a scope from the client since
the token was issued is not reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.errors import PermissionDenied
from app.repositories import (
    PermissionRepository,
    RefreshTokenRepository,
    SignInSessionRepository,
    UserRepository,
)
from app.security.opaque_tokens import token_digest
from app.services.admin.service_clients import INTROSPECT_SCOPE, SERVICE_SCOPES
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import unit_of_work
from app.services.tokens.assurance import methods_of
from app.services.tokens.bearer_authentication import (
    AccessTokenDecoder,
    Authenticator,
    NotAuthenticated,
)
from app.services.tokens.client_authentication import (
    ClientAuthenticator,
    ClientCredentials,
    InvalidClient,
)
from app.services.tokens.scopes import UserScopes
from app.services.tokens.sign_in_sessions import SignInSessions

INACTIVE: dict[str, Any] = {"active": False}
# The claims an active access token's answer repeats from the token itself.
_ACCESS_TOKEN_FIELDS = (
    "sub",
    "client_id",
    "scope",
    "exp",
    "iat",
    "iss",
    "aud",
    "jti",
    "auth_time",
    "acr",
    "amr",
)


class IntrospectionNotAllowed(PermissionDenied):
    default_detail = f"This client lacks the `{INTROSPECT_SCOPE}` scope."


class IntrospectionService(Service):
    def __init__(
        self,
        session: AsyncSession,
        context: ServiceContext,
        *,
        decoder: AccessTokenDecoder,
        authenticator: Authenticator,
    ) -> None:
        super().__init__(session, context)
        self.decoder = decoder
        self.authenticator = authenticator
        self.client_authenticator = ClientAuthenticator(session, context.limiter)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.users = UserRepository(session)
        self.session_rows = SignInSessionRepository(session)
        self.sessions = SignInSessions(session, context.settings)
        self.scopes = UserScopes(session)
        self.permissions = PermissionRepository(session)

    async def introspect(
        self,
        credentials: ClientCredentials | None,
        token: str,
        token_type_hint: str | None,
        *,
        caller: Caller,
    ) -> dict[str, Any]:
        """The RFC 7662 answer about `token`, for a client holding the `introspect` scope."""
        # Everything runs on the session's one connection, with Core statements on the hot
        # path (an access token): every resource server that delegates its checks pays this.
        connection = await self.session.connection()
        try:
            service_client = await self.client_authenticator.authenticate(
                credentials, caller, connection=connection
            )
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.client_authenticator.record_failure(failure, caller)
            raise
        if INTROSPECT_SCOPE not in service_client.scopes:
            raise IntrospectionNotAllowed
        # The hint only orders the lookups (RFC 7662 section 2.1); a wrong one changes nothing.
        if token_type_hint == "refresh_token":
            answer = await self._refresh_token(token)
            return answer or await self._access_token(token, connection) or INACTIVE
        answer = await self._access_token(token, connection)
        return answer or await self._refresh_token(token) or INACTIVE

    async def _access_token(self, token: str, connection: AsyncConnection) -> dict[str, Any] | None:
        try:
            claims = self.decoder.decode(token)
        except Exception:  # expired, forged, foreign or not a JWT at all
            return None
        if "sid" not in claims:
            return await self._client_token(claims, connection)
        try:
            principal = await self.authenticator.principal_for(claims, connection=connection)
        except NotAuthenticated:
            return INACTIVE  # ours, but logged out, superseded or its user deactivated
        user = principal.user
        answer = {"active": True, **_repeat(claims)}
        if "scope" in claims:
            answer["scope"] = await self.scopes.narrow(
                str(claims["scope"]), user_id=user.id, is_superuser=user.is_superuser
            )
        return {
            **answer,
            "token_type": "Bearer",
            "username": user.username or user.email,
            "email": user.email,
            "roles": user.roles,
        }

    async def _client_token(
        self, claims: Mapping[str, Any], connection: AsyncConnection
    ) -> dict[str, Any]:
        try:
            held = await self.authenticator.client_scopes(claims, connection=connection)
        except NotAuthenticated:
            return INACTIVE  # revoked, or its client deleted or disabled
        answer = {"active": True, **_repeat(claims), "token_type": "Bearer"}
        if "scope" in claims:
            answer["scope"] = await self._existing(held)
        return answer

    async def _existing(self, scopes: frozenset[str]) -> str:
        """`scopes` without permissions deleted since they were granted, sorted."""
        codenames = scopes - SERVICE_SCOPES.keys()
        existing = await self.permissions.existing_codenames(codenames) if codenames else set()
        return " ".join(sorted((scopes & SERVICE_SCOPES.keys()) | existing))

    async def _refresh_token(self, token: str) -> dict[str, Any] | None:
        stored = await self.refresh_tokens.get_by_hash(token_digest(token))
        if stored is None:
            return None
        if stored.spent_at is not None:
            return INACTIVE
        sign_in_session = await self.session_rows.get_by_id(stored.session_id)
        user = await self.users.get_by_id(sign_in_session.user_id) if sign_in_session else None
        now = self.clock()
        if (
            sign_in_session is None
            or user is None
            or not self.sessions.is_usable(sign_in_session, user, now)
        ):
            return INACTIVE
        scope = await self.scopes.narrow(
            sign_in_session.scope, user_id=user.id, is_superuser=user.is_superuser
        )
        return {
            "active": True,
            "sub": str(user.id),
            "client_id": sign_in_session.client_id,
            "scope": scope,
            "exp": int(self.sessions.usable_until(sign_in_session).timestamp()),
            "iat": int(stored.created_at.timestamp()),
            "auth_time": int(sign_in_session.authenticated_at.timestamp()),
            "acr": sign_in_session.acr,
            **({"amr": methods_of(sign_in_session.amr)} if sign_in_session.amr else {}),
            "iss": self.settings.issuer,
            "token_type": "refresh_token",
            "username": user.username or user.email,
            "email": user.email,
            "roles": sorted(role.name for role in user.roles),
        }


def _repeat(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {name: claims[name] for name in _ACCESS_TOKEN_FIELDS if name in claims}
