"""Sign-up, sign-in and sign-out: the OAuth2 token grants and session endings."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidCredentials, user_conflict
from app.models import User
from app.observability.metrics import current_metrics
from app.repositories import UserRepository
from app.repositories.base import UniqueViolation
from app.repositories.users import normalize_email
from app.services.audit import AuditEventType, AuditTrail
from app.services.client_auth import (
    ClaimedClient,
    ClientAuthenticator,
    IdentifiedClient,
    InvalidClient,
    UnauthorizedClient,
)
from app.services.client_info import ClientInfo
from app.services.context import Service, ServiceContext
from app.services.rate_limits import LimitName
from app.services.scopes import UserScopes
from app.services.sessions import IssuedSession, RefreshTokenReused, SessionManager
from app.services.sign_in_limits import Account, SignInLimits
from app.services.token_issuer import TokenIssuer, TokenResponse
from app.services.unit_of_work import run_unit_of_work, unit_of_work


class LoginFailed(InvalidCredentials):
    """Unknown account, wrong password or inactive account: deliberately indistinguishable."""

    default_detail = "Invalid username or password."


class AuthService(Service):
    def __init__(
        self,
        session: AsyncSession,
        context: ServiceContext,
        *,
        issuer: TokenIssuer,
    ) -> None:
        super().__init__(session, context)
        self.issuer = issuer
        self.users = UserRepository(session)
        self.scopes = UserScopes(session)
        self.sessions = SessionManager(session, context.settings)
        self.client_authenticator = ClientAuthenticator(session, context.limiter)
        self.audit = AuditTrail(session)
        self.sign_in_limits = SignInLimits(context.limiter, context.outbox)

    async def register(
        self,
        *,
        email: str,
        password: str,
        username: str | None,
        full_name: str | None,
        client: ClientInfo,
    ) -> User:
        """Create an unverified account. The unique indexes, not a prior lookup, decide."""
        await self.limiter.consume(LimitName.register_ip, client.ip)
        email = normalize_email(email)
        username = username.strip().lower() if username else None
        self.policy.check(password, email=email, username=username)
        hashed = await self.hasher.hash(password)
        try:
            async with unit_of_work(self.session):
                user = await self.users.create(
                    email=email, username=username, full_name=full_name, hashed_password=hashed
                )
                await self.audit.record(
                    AuditEventType.user_registered, client=client, user_id=user.id
                )
        except UniqueViolation as violation:
            raise user_conflict(violation.field) from None
        return user

    async def password_grant(
        self,
        *,
        username: str,
        password: str,
        scope: str | None,
        client: ClientInfo,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """Sign in with a password: a new session and its first token pair, for a public
        first-party client (a service client is `UnauthorizedClient`)."""
        public_client_id = await self._public_client(claimed, client)
        user = await self.users.get_by_identifier(username)
        # Hand the connection back before queueing for the hash: a sign-in flood must not
        # hold the pool while it waits (loaded attributes stay readable).
        await self.session.close()
        account = Account.of(user, username)
        attempt = await self.sign_in_limits.reserve(account, client.ip)
        try:
            issued = await self._sign_in(user, password, scope, client, public_client_id)
        except LoginFailed:
            # The slots stay taken: they are the failure counts.
            await self._record_failed_login(user, username, client)
            current_metrics().login_failed()
            raise
        except BaseException:
            await attempt.release()  # a fault, not a failed guess
            raise
        await self.sign_in_limits.succeeded(attempt, account, client.ip)
        current_metrics().login_ok()
        current_metrics().token_issued("password")
        return self.issuer.for_session(issued)

    async def _sign_in(
        self,
        user: User | None,
        password: str,
        scope: str | None,
        client: ClientInfo,
        client_id: str,
    ) -> IssuedSession:
        matches, new_hash = False, None
        if len(password) > self.settings.password_max_length:
            pass  # refused before hashing: no one can make us hash megabytes
        elif user is None:
            await self.hasher.verify_dummy(password)
        else:
            matches, new_hash = await self.hasher.verify_and_update(password, user.hashed_password)
        if user is None or not matches or not user.is_active:
            raise LoginFailed

        now, verified_hash = self.clock(), user.hashed_password

        async def start_session() -> IssuedSession:
            # The password was checked outside the transaction (hashing is slow). A password
            # change, reset, deactivation or deletion that committed meanwhile wins, as if it
            # had come first: its "every session ends" must hold for this sign-in too.
            # (`user` is detached since the hash; a re-run after a conflict reads nothing of
            # it that the first run changed but `verified_hash`, kept aside.)
            signed_in = await self.users.record_sign_in(
                user, verified_hash=verified_hash, now=now, new_hash=new_hash
            )
            if not signed_in:
                raise LoginFailed
            granted = await self._granted_scope(user, scope)
            issued = await self.sessions.start(
                user,
                client,
                scope=granted,
                client_id=client_id,
                now=now,
            )
            await self.audit.record(
                AuditEventType.login_succeeded,
                client=client,
                user_id=user.id,
                actor_id=user.id,
                session_id=str(issued.session.id),
            )
            return issued

        return await run_unit_of_work(self.session, start_session)

    async def refresh_grant(
        self,
        *,
        refresh_token: str,
        client: ClientInfo,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """Rotate a refresh token: spend it, issue the next pair in the same session.

        Only the client the session was issued to may (RFC 6749 section 6), and the new pair
        carries only the scopes the user may have now.
        """
        caller = await self._identify_client(claimed, client)
        now = self.clock()
        try:
            issued = await run_unit_of_work(
                self.session,
                lambda: self.sessions.rotate(
                    refresh_token, client, now, client_id=caller.client_id
                ),
            )
        except RefreshTokenReused as reuse:
            # The rotation rolled back; the family revocation must still be kept and audited.
            async with unit_of_work(self.session):
                await self.sessions.end(reuse.session_id, now, "refresh_token_reuse")
                await self.audit.record(
                    AuditEventType.refresh_token_reused,
                    client=client,
                    user_id=reuse.user_id,
                    session_id=str(reuse.session_id),
                )
            current_metrics().refresh_reuse()
            raise
        current_metrics().token_issued("refresh_token")
        return self.issuer.for_session(issued)

    async def logout(
        self, *, user_id: uuid.UUID, session_id: uuid.UUID, client: ClientInfo
    ) -> None:
        """End the caller's current session (its refresh tokens and access tokens)."""

        async def end_session() -> None:
            await self.sessions.end(session_id, self.clock(), "logout")
            await self.audit.record(
                AuditEventType.logout,
                client=client,
                user_id=user_id,
                actor_id=user_id,
                session_id=str(session_id),
            )

        await run_unit_of_work(self.session, end_session)

    async def logout_all(self, *, user_id: uuid.UUID, client: ClientInfo) -> None:
        """End every session of the user and invalidate all their access tokens at once."""

        async def end_all_sessions() -> None:
            user = await self.users.get_by_id(user_id)
            if user is None:
                return
            ended = await self.sessions.end_all(user_id, self.clock(), "logout_all")
            user.token_version += 1
            await self.audit.record(
                AuditEventType.logout_all,
                client=client,
                user_id=user_id,
                actor_id=user_id,
                sessions_ended=ended,
            )

        await run_unit_of_work(self.session, end_all_sessions)

    async def _granted_scope(self, user: User, requested: str | None) -> str:
        return await self.scopes.narrow(
            requested or "", user_id=user.id, is_superuser=user.is_superuser
        )

    async def _public_client(self, claimed: ClaimedClient, client: ClientInfo) -> str:
        """The client_id of the public client signing in; a service client is refused (the
        password grant is for the operator's own frontends)."""
        caller = await self._identify_client(claimed, client)
        if not caller.is_public:
            raise UnauthorizedClient("Service clients may not use the password grant.")
        return caller.client_id

    async def _identify_client(
        self, claimed: ClaimedClient, client: ClientInfo
    ) -> IdentifiedClient:
        """The client the grant is for, or `InvalidClient` once its failure is audited."""
        try:
            return await self.client_authenticator.identify(claimed, client, self.settings)
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.client_authenticator.record_failure(failure, client)
            raise

    async def _record_failed_login(
        self, user: User | None, typed_name: str, client: ClientInfo
    ) -> None:
        async with unit_of_work(self.session):
            await self.audit.record(
                AuditEventType.login_failed,
                client=client,
                user_id=user.id if user else None,
                # A keyed digest, not the name: a mistyped password in the username field stays
                # out of the audit trail, and no list of addresses reverses it.
                identifier_hmac=self.context.audit_hmac.digest(typed_name.strip().lower()),
            )
