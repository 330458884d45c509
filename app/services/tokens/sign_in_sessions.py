"""Sign-in sessions and refresh-token rotation: a building block of the auth use cases.

It never commits; the use case that calls it does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import DomainError
from app.models import User, UserSession
from app.repositories import RefreshTokenRepository, SignInSessionRepository, UserRepository
from app.security.opaque_tokens import new_opaque_token, token_digest
from app.services.common.caller import Caller
from app.services.tokens.assurance import assurance_level
from app.services.tokens.scopes import UserScopes


class InvalidGrant(DomainError):
    """A refresh token (or other grant) that is unknown, spent, expired or revoked."""

    default_detail = "The refresh token is invalid, expired or revoked."


class RefreshTokenReused(InvalidGrant):
    """A spent refresh token came back after the grace period: its family was revoked."""

    default_detail = "The refresh token was already used; the session has been ended."

    def __init__(self, session_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        super().__init__()
        self.session_id = session_id
        self.user_id = user_id


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session: a token session with its first refresh token, or a browser session
    with the secret for its cookie."""

    session: UserSession
    user: User
    refresh_token: str | None
    browser_secret: str | None = None


class SignInSessions:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.settings = settings
        self.sessions = SignInSessionRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.users = UserRepository(session)
        self.scopes = UserScopes(session)

    async def start(
        self,
        user: User,
        caller: Caller,
        *,
        scope: str,
        client_id: str | None,
        methods: Sequence[str],
        now: datetime,
        browser: bool = False,
    ) -> IssuedSession:
        """Open a session (a refresh-token family) and issue its first refresh token, or, for
        `browser`, a browser session and the secret for its cookie. The user has just proved
        the credentials `methods` (RFC 8176 `amr` values): the session's `authenticated_at`
        is `now`, its `acr` what those methods add up to."""
        browser_secret = new_opaque_token() if browser else None
        sign_in_session = await self.sessions.create(
            user_id=user.id,
            client_id=client_id,
            scope=scope,
            user_agent=caller.user_agent_truncated,
            ip=caller.ip,
            created_at=now,
            last_used_at=now,
            authenticated_at=now,
            amr=" ".join(methods),
            acr=assurance_level(methods),
            expires_at=now + timedelta(seconds=self.settings.session_absolute_lifetime_seconds),
            browser_secret_hash=token_digest(browser_secret) if browser_secret else None,
        )
        if browser_secret is not None:
            return IssuedSession(
                session=sign_in_session,
                user=user,
                refresh_token=None,
                browser_secret=browser_secret,
            )
        refresh_token = await self._issue_refresh_token(sign_in_session.id, now)
        return IssuedSession(session=sign_in_session, user=user, refresh_token=refresh_token)

    async def start_from_browser(
        self,
        browser_session: UserSession,
        user: User,
        caller: Caller,
        *,
        scope: str,
        client_id: str,
        now: datetime,
        with_refresh_token: bool,
    ) -> IssuedSession:
        """Open a client's session on the strength of a browser session's sign-in (an
        authorization code it approved): the same `authenticated_at`, `amr` and `acr`, since
        the user proved nothing new, and ended with the browser session. Its first refresh
        token only when `with_refresh_token`."""
        sign_in_session = await self.sessions.create(
            user_id=user.id,
            client_id=client_id,
            scope=scope,
            user_agent=caller.user_agent_truncated,
            ip=caller.ip,
            created_at=now,
            last_used_at=now,
            authenticated_at=browser_session.authenticated_at,
            amr=browser_session.amr,
            acr=browser_session.acr,
            expires_at=now + timedelta(seconds=self.settings.session_absolute_lifetime_seconds),
            browser_session_id=browser_session.id,
        )
        refresh_token = (
            await self._issue_refresh_token(sign_in_session.id, now) if with_refresh_token else None
        )
        return IssuedSession(session=sign_in_session, user=user, refresh_token=refresh_token)

    async def find_browser_session(
        self, browser_secret: str, now: datetime
    ) -> tuple[UserSession, User] | None:
        """The live browser session the cookie's secret names, and its user (active), or None.
        Marks it used (its idle lifetime starts again)."""
        sign_in_session = await self.sessions.get_by_browser_secret(token_digest(browser_secret))
        if sign_in_session is None:
            return None
        user = await self.users.get_by_id(sign_in_session.user_id)
        if user is None or not self.is_usable(sign_in_session, user, now):
            return None
        sign_in_session.last_used_at = now
        return sign_in_session, user

    async def end_browser_session(self, session_id: uuid.UUID, now: datetime, reason: str) -> int:
        """End a browser session and the client sessions its codes opened."""
        return await self.sessions.revoke_with_derived(session_id, now, reason)

    async def rotate(
        self, refresh_token: str, caller: Caller, now: datetime, *, client_id: str
    ) -> IssuedSession:
        """Spend `refresh_token` and issue its successor in the same session, for `client_id`,
        the client the session was issued to. The session's scope narrows to what the user
        may have now (a permission taken away since sign-in is not refreshed into new tokens).

        Raises `InvalidGrant` for unknown, expired or revoked tokens, for another client's
        token (which stays as it was), and for a spent token replayed within the grace period
        (a client racing itself: nothing else happens).
        Raises `RefreshTokenReused` for a spent token replayed later: the caller must then
        revoke the whole session (theft signal) in a transaction of its own.
        """
        digest = token_digest(refresh_token)
        sign_in_session = await self.sessions.get_for_update_by_refresh_token(digest)
        if sign_in_session is None or sign_in_session.client_id != client_id:
            raise InvalidGrant  # unknown token, its session is gone, or not this client's
        if await self.refresh_tokens.spend(digest, now) is None:
            await self._refuse_spent_or_unknown(digest, now)
        user = await self.users.get_by_id(sign_in_session.user_id)
        if user is None or not self.is_usable(sign_in_session, user, now):
            raise InvalidGrant
        sign_in_session.scope = await self.scopes.narrow(
            sign_in_session.scope, user_id=user.id, is_superuser=user.is_superuser
        )
        sign_in_session.last_used_at = now
        if caller.ip:
            sign_in_session.ip = caller.ip
        successor = await self._issue_refresh_token(sign_in_session.id, now)
        return IssuedSession(session=sign_in_session, user=user, refresh_token=successor)

    async def get(self, session_id: uuid.UUID) -> UserSession | None:
        return await self.sessions.get_by_id(session_id)

    async def find_by_refresh_token(self, refresh_token: str) -> UserSession | None:
        token = await self.refresh_tokens.get_by_hash(token_digest(refresh_token))
        return None if token is None else await self.sessions.get_by_id(token.session_id)

    async def end(self, session_id: uuid.UUID, now: datetime, reason: str) -> bool:
        return await self.sessions.revoke(session_id, now, reason)

    async def end_all(
        self, user_id: uuid.UUID, now: datetime, reason: str, *, keep: uuid.UUID | None = None
    ) -> int:
        return await self.sessions.revoke_all_for_user(user_id, now, reason, keep=keep)

    def usable_until(self, sign_in_session: UserSession) -> datetime:
        """When the session ends unless used again: its idle or absolute limit, the earlier."""
        idle_deadline = sign_in_session.last_used_at + timedelta(
            seconds=self.settings.session_idle_timeout_seconds
        )
        return min(idle_deadline, sign_in_session.expires_at)

    def is_usable(self, sign_in_session: UserSession, user: User, now: datetime) -> bool:
        return (
            sign_in_session.revoked_at is None
            and now < self.usable_until(sign_in_session)
            and user.is_active
        )

    async def _refuse_spent_or_unknown(self, digest: str, now: datetime) -> None:
        token = await self.refresh_tokens.get_by_hash(digest)
        if token is None or token.spent_at is None:
            raise InvalidGrant
        grace = timedelta(seconds=self.settings.refresh_reuse_grace_seconds)
        if now - token.spent_at <= grace:
            raise InvalidGrant("The refresh token was already used.")
        sign_in_session = await self.sessions.get_by_id(token.session_id)
        raise RefreshTokenReused(
            token.session_id, sign_in_session.user_id if sign_in_session else None
        )

    async def _issue_refresh_token(self, session_id: uuid.UUID, now: datetime) -> str:
        raw = new_opaque_token()
        await self.refresh_tokens.create(
            session_id=session_id, token_hash=token_digest(raw), created_at=now
        )
        return raw
