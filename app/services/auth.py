"""Sign-up, sign-in and sign-out: the OAuth2 token grants and session endings."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from app.observability.metrics import current_metrics
from app.repositories import PermissionRepository, UserRepository
from app.repositories.base import UniqueViolation
from app.repositories.users import normalize_email
from app.services.audit import AuditEventType, AuditTrail
from app.services.authentication import AccessTokenDecoder
from app.services.client_info import ClientInfo
from app.services.context import Service, ServiceContext
from app.services.errors import InvalidCredentials, user_conflict
from app.services.rate_limits import LimitName
from app.services.sessions import IssuedSession, RefreshTokenReused, SessionManager
from app.services.sign_in_limits import Account, SignInLimits
from app.services.token_issuer import TokenIssuer, TokenResponse
from app.services.unit_of_work import run_unit_of_work, unit_of_work

# Scopes any signed-in user may ask for; everything else must be a permission they hold.
BASIC_SCOPES = frozenset({"openid", "profile", "email"})


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
        decoder: AccessTokenDecoder,
    ) -> None:
        super().__init__(session, context)
        self.issuer = issuer
        self.decoder = decoder
        self.users = UserRepository(session)
        self.permissions = PermissionRepository(session)
        self.sessions = SessionManager(session, context.settings)
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
        self, *, username: str, password: str, scope: str | None, client: ClientInfo
    ) -> TokenResponse:
        """Sign in with a password: a new session and its first token pair."""
        user = await self.users.get_by_identifier(username)
        # Hand the connection back before queueing for the hash: a sign-in flood must not
        # hold the pool while it waits (loaded attributes stay readable).
        await self.session.close()
        account = Account.of(user, username)
        attempt = await self.sign_in_limits.reserve(account, client.ip)
        try:
            issued = await self._sign_in(user, password, scope, client)
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
        self, user: User | None, password: str, scope: str | None, client: ClientInfo
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
                client_id=self.settings.first_party_client_id,
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

    async def refresh_grant(self, *, refresh_token: str, client: ClientInfo) -> TokenResponse:
        """Rotate a refresh token: spend it, issue the next pair in the same session."""
        now = self.clock()
        try:
            issued = await run_unit_of_work(
                self.session, lambda: self.sessions.rotate(refresh_token, client, now)
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

    async def revoke(self, *, token: str, token_type_hint: str | None, client: ClientInfo) -> None:
        """RFC 7009: make `token` unusable. Unknown or invalid tokens are silently ignored.

        A refresh token ends its session. An access token cannot be recalled on its own, so
        its session is ended, which makes every token of that session inactive.
        """
        # The hint only orders the search (RFC 7009 section 2.1): a wrong one must not matter.
        lookups = [self._refresh_token_session, self._access_token_session]
        if token_type_hint == "access_token":
            lookups.reverse()

        async def end_its_session() -> None:
            for lookup in lookups:
                found = await lookup(token)
                if found is not None:
                    break
            else:
                return
            session_id, user_id, token_type = found
            if await self.sessions.end(session_id, self.clock(), "revoked"):
                await self.audit.record(
                    AuditEventType.token_revoked,
                    client=client,
                    user_id=user_id,
                    actor_id=user_id,
                    session_id=str(session_id),
                    token_type=token_type,
                )

        await run_unit_of_work(self.session, end_its_session)

    async def _refresh_token_session(self, token: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
        family = await self.sessions.find_by_refresh_token(token)
        return None if family is None else (family.id, family.user_id, "refresh_token")

    async def _access_token_session(self, token: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
        try:
            claims = self.decoder.decode(token)
            return uuid.UUID(str(claims["sid"])), uuid.UUID(str(claims["sub"])), "access_token"
        except Exception:  # expired, forged, not a JWT, or no session: nothing to revoke
            return None

    async def _granted_scope(self, user: User, requested: str | None) -> str:
        wanted = set((requested or "").split())
        if not wanted:
            return ""
        allowed = BASIC_SCOPES | (
            await self.permissions.all_codenames()
            if user.is_superuser
            else await self.permissions.codenames_for_user(user.id)
        )
        return " ".join(sorted(wanted & allowed))

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
