"""RFC 7009 token revocation: a client makes one of its own tokens unusable."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import RevokedAccessTokenRepository
from app.services.audit import AuditEventType, AuditTrail
from app.services.authentication import AccessTokenDecoder
from app.services.client_auth import (
    ClaimedClient,
    ClientAuthenticator,
    IdentifiedClient,
    InvalidClient,
)
from app.services.client_info import ClientInfo
from app.services.context import Service, ServiceContext
from app.services.sessions import SessionManager
from app.services.unit_of_work import run_unit_of_work, unit_of_work


class RevocationService(Service):
    def __init__(
        self, session: AsyncSession, context: ServiceContext, *, decoder: AccessTokenDecoder
    ) -> None:
        super().__init__(session, context)
        self.decoder = decoder
        self.sessions = SessionManager(session, context.settings)
        self.revoked_access_tokens = RevokedAccessTokenRepository(session)
        self.client_authenticator = ClientAuthenticator(session, context.limiter)
        self.audit = AuditTrail(session)

    async def revoke(
        self,
        *,
        token: str,
        token_type_hint: str | None,
        claimed: ClaimedClient,
        client: ClientInfo,
    ) -> None:
        """Make `token` unusable if it was issued to the calling client; unknown, invalid and
        other clients' tokens are silently ignored (the answer must not tell which).

        Client credentials, when presented, must be right (`InvalidClient`); a request naming
        no client is the default first-party client. A refresh token ends its session, and so
        does a user's access token, which cannot be recalled on its own. A service client's
        own access token is refused everywhere until it would have expired.
        """
        try:
            caller = await self.client_authenticator.identify(claimed, client, self.settings)
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.client_authenticator.record_failure(failure, client)
            raise
        # The hint only orders the search (RFC 7009 section 2.1): a wrong one must not matter.
        lookups = [self._refresh_token, self._access_token]
        if token_type_hint == "access_token":
            lookups.reverse()

        async def revoke_it() -> None:
            for lookup in lookups:
                if await lookup(token, caller, client):
                    return

        await run_unit_of_work(self.session, revoke_it)

    async def _refresh_token(
        self, token: str, caller: IdentifiedClient, client: ClientInfo
    ) -> bool:
        """Revoke a refresh token of the caller's; whether `token` is a refresh token at all."""
        family = await self.sessions.find_by_refresh_token(token)
        if family is None:
            return False
        if family.client_id == caller.client_id:
            await self._end_session(family.id, family.user_id, "refresh_token", client)
        return True

    async def _access_token(self, token: str, caller: IdentifiedClient, client: ClientInfo) -> bool:
        """Revoke an access token of the caller's; whether `token` is a valid access token."""
        try:
            claims = self.decoder.decode(token)
        except Exception:  # expired, forged, not a JWT: nothing to revoke
            return False
        if claims.get("client_id") != caller.client_id:
            return True
        if "sid" in claims:
            try:
                session_id, user_id = uuid.UUID(str(claims["sid"])), uuid.UUID(str(claims["sub"]))
            except ValueError:
                return True
            await self._end_session(session_id, user_id, "access_token", client)
        elif not caller.is_public:  # a service client's own token (client-credentials grant)
            await self._deny(claims, caller, client)
        return True

    async def _end_session(
        self, session_id: uuid.UUID, user_id: uuid.UUID, token_type: str, client: ClientInfo
    ) -> None:
        if await self.sessions.end(session_id, self.clock(), "revoked"):
            await self.audit.record(
                AuditEventType.token_revoked,
                client=client,
                user_id=user_id,
                # The caller held the user's token: theirs is the act.
                actor_id=user_id,
                session_id=str(session_id),
                token_type=token_type,
            )

    async def _deny(
        self, claims: Mapping[str, Any], caller: IdentifiedClient, client: ClientInfo
    ) -> None:
        now = self.clock()
        await self.revoked_access_tokens.purge_expired(now)
        added = await self.revoked_access_tokens.add_once(
            str(claims["jti"]),
            client_id=caller.client_id,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            now=now,
        )
        if added:  # once, however many revocations of the token race
            await self.audit.record(
                AuditEventType.token_revoked,
                client=client,
                token_type="access_token",
                client_id=caller.client_id,
            )
