"""RFC 7009 token revocation: a client makes one of its own tokens unusable."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import RevokedAccessTokenRepository
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import run_unit_of_work, unit_of_work
from app.services.tokens.bearer_authentication import AccessTokenDecoder
from app.services.tokens.client_authentication import (
    ClaimedClient,
    ClientAuthenticator,
    IdentifiedClient,
    InvalidClient,
)
from app.services.tokens.sign_in_sessions import SignInSessions


class RevocationService(Service):
    def __init__(
        self, session: AsyncSession, context: ServiceContext, *, decoder: AccessTokenDecoder
    ) -> None:
        super().__init__(session, context)
        self.decoder = decoder
        self.sessions = SignInSessions(session, context.settings)
        self.revoked_access_tokens = RevokedAccessTokenRepository(session)
        self.client_authenticator = ClientAuthenticator(session, context.limiter)
        self.audit = AuditTrail(session)

    async def revoke(
        self,
        *,
        token: str,
        token_type_hint: str | None,
        claimed: ClaimedClient,
        caller: Caller,
    ) -> None:
        """Make `token` unusable if it was issued to the calling client; unknown, invalid and
        other clients' tokens are silently ignored (the answer must not tell which).

        Client credentials, when presented, must be right (`InvalidClient`); a request naming
        no client is the default first-party client. A refresh token ends its session, and so
        does a user's access token, which cannot be recalled on its own. A service client's
        own access token is refused everywhere until it would have expired.
        """
        try:
            service_client = await self.client_authenticator.identify(
                claimed, caller, self.settings
            )
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.client_authenticator.record_failure(failure, caller)
            raise
        # The hint only orders the search (RFC 7009 section 2.1): a wrong one must not matter.
        lookups = [self._refresh_token, self._access_token]
        if token_type_hint == "access_token":
            lookups.reverse()

        async def revoke_it() -> None:
            for lookup in lookups:
                if await lookup(token, service_client, caller):
                    return

        await run_unit_of_work(self.session, revoke_it)

    async def _refresh_token(
        self, token: str, service_client: IdentifiedClient, caller: Caller
    ) -> bool:
        """Revoke a refresh token of the caller's; whether `token` is a refresh token at all."""
        sign_in_session = await self.sessions.find_by_refresh_token(token)
        if sign_in_session is None:
            return False
        if sign_in_session.client_id == service_client.client_id:
            await self._end_session(
                sign_in_session.id, sign_in_session.user_id, "refresh_token", caller
            )
        return True

    async def _access_token(
        self, token: str, service_client: IdentifiedClient, caller: Caller
    ) -> bool:
        """Revoke an access token of the caller's; whether `token` is a valid access token."""
        try:
            claims = self.decoder.decode(token)
        except Exception:  # expired, forged, not a JWT: nothing to revoke
            return False
        if claims.get("client_id") != service_client.client_id:
            return True
        if "sid" in claims:
            try:
                session_id, user_id = uuid.UUID(str(claims["sid"])), uuid.UUID(str(claims["sub"]))
            except ValueError:
                return True
            await self._end_session(session_id, user_id, "access_token", caller)
        elif (
            not service_client.is_public
        ):  # a service client's own token (client-credentials grant)
            await self._deny(claims, service_client, caller)
        return True

    async def _end_session(
        self, session_id: uuid.UUID, user_id: uuid.UUID, token_type: str, caller: Caller
    ) -> None:
        if await self.sessions.end(session_id, self.clock(), "revoked"):
            await self.audit.record(
                AuditEventType.token_revoked,
                caller=caller,
                user_id=user_id,
                # The caller held the user's token: theirs is the act.
                actor_id=user_id,
                session_id=str(session_id),
                token_type=token_type,
            )

    async def _deny(
        self, claims: Mapping[str, Any], service_client: IdentifiedClient, caller: Caller
    ) -> None:
        now = self.clock()
        await self.revoked_access_tokens.purge_expired(now)
        added = await self.revoked_access_tokens.add_once(
            str(claims["jti"]),
            client_id=service_client.client_id,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            now=now,
        )
        if added:  # once, however many revocations of the token race
            await self.audit.record(
                AuditEventType.token_revoked,
                caller=caller,
                token_type="access_token",
                client_id=service_client.client_id,
            )
