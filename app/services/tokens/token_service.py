"""The OAuth2 token endpoint's grants, one service for all three: `password` (first-party
sign-in), `refresh_token` (rotation) and `client_credentials` (service clients' own tokens)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DomainError, InvalidCredentials
from app.identifiers import normalize_sign_in_name
from app.models import User
from app.observability.metrics import current_metrics
from app.repositories import PermissionRepository, UserRepository
from app.services.admin.service_clients import SERVICE_SCOPES
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import run_unit_of_work, unit_of_work
from app.services.tokens.client_authentication import (
    ClaimedClient,
    ClientAuthenticator,
    ClientCredentials,
    IdentifiedClient,
    InvalidClient,
    UnauthorizedClient,
)
from app.services.tokens.scopes import UserScopes
from app.services.tokens.sign_in_limits import Account, SignInLimits
from app.services.tokens.sign_in_sessions import IssuedSession, RefreshTokenReused, SignInSessions
from app.services.tokens.token_issuer import TokenIssuer, TokenResponse


class LoginFailed(InvalidCredentials):
    """Unknown account, wrong password or inactive account: deliberately indistinguishable."""

    default_detail = "Invalid username or password."


class InvalidScope(DomainError):
    default_detail = "The requested scope exceeds the scopes this client may have."


class TokenService(Service):
    """Every grant of `/auth/token`. Each method is its own use case and commits itself."""

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
        self.permissions = PermissionRepository(session)
        self.scopes = UserScopes(session)
        self.sessions = SignInSessions(session, context.settings)
        self.client_authenticator = ClientAuthenticator(session, context.limiter)
        self.audit = AuditTrail(session)
        self.sign_in_limits = SignInLimits(context.limiter, context.outbox)

    async def password_grant(
        self,
        *,
        username: str,
        password: str,
        scope: str | None,
        caller: Caller,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """Sign in with a password: a new session and its first token pair, for a public
        first-party client (a service client is `UnauthorizedClient`)."""
        public_client_id = await self._public_client(claimed, caller)
        sign_in_name = normalize_sign_in_name(username)
        user = await self.users.get_by_identifier(sign_in_name)
        # Hand the connection back before queueing for the hash: a sign-in flood must not
        # hold the pool while it waits (loaded attributes stay readable).
        await self.session.close()
        account = Account.of(user, sign_in_name)
        attempt = await self.sign_in_limits.reserve(account, caller.ip)
        try:
            issued = await self._sign_in(user, password, scope, caller, public_client_id)
        except LoginFailed:
            # The slots stay taken: they are the failure counts.
            await self._record_failed_login(user, sign_in_name, caller)
            current_metrics().login_failed()
            raise
        except BaseException:
            await attempt.release()  # a fault, not a failed guess
            raise
        await self.sign_in_limits.succeeded(attempt, account, caller.ip)
        current_metrics().login_ok()
        current_metrics().token_issued("password")
        return self.issuer.for_session(issued)

    async def _sign_in(
        self,
        user: User | None,
        password: str,
        scope: str | None,
        caller: Caller,
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
                caller,
                scope=granted,
                client_id=client_id,
                now=now,
            )
            await self.audit.record(
                AuditEventType.login_succeeded,
                caller=caller,
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
        caller: Caller,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """Rotate a refresh token: spend it, issue the next pair in the same session.

        Only the client the session was issued to may (RFC 6749 section 6), and the new pair
        carries only the scopes the user may have now.
        """
        service_client = await self._identify_client(claimed, caller)
        now = self.clock()
        try:
            issued = await run_unit_of_work(
                self.session,
                lambda: self.sessions.rotate(
                    refresh_token, caller, now, client_id=service_client.client_id
                ),
            )
        except RefreshTokenReused as reuse:
            # The rotation rolled back; the family revocation must still be kept and audited.
            async with unit_of_work(self.session):
                await self.sessions.end(reuse.session_id, now, "refresh_token_reuse")
                await self.audit.record(
                    AuditEventType.refresh_token_reused,
                    caller=caller,
                    user_id=reuse.user_id,
                    session_id=str(reuse.session_id),
                )
            current_metrics().refresh_reuse()
            raise
        current_metrics().token_issued("refresh_token")
        return self.issuer.for_session(issued)

    async def client_credentials_grant(
        self, credentials: ClientCredentials | None, *, scope: str | None, caller: Caller
    ) -> TokenResponse:
        """An access token for the authenticated client. Without `scope` it gets every scope
        it is allowed; asking for more than that is `InvalidScope`, not a silent narrowing."""
        try:
            service_client = await self.client_authenticator.authenticate(credentials, caller)
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.client_authenticator.record_failure(failure, caller)
            raise
        # A permission deleted since the client was registered is no longer grantable.
        existing = await self.permissions.all_codenames() | set(SERVICE_SCOPES)
        allowed = set(service_client.scopes) & existing
        requested = set(scope.split()) if scope else allowed
        if not requested <= allowed:
            raise InvalidScope(
                f"Not allowed for this client: {' '.join(sorted(requested - allowed))}."
            )
        current_metrics().token_issued("client_credentials")
        return self.issuer.for_client(service_client, " ".join(sorted(requested)))

    async def _granted_scope(self, user: User, requested: str | None) -> str:
        return await self.scopes.narrow(
            requested or "", user_id=user.id, is_superuser=user.is_superuser
        )

    async def _public_client(self, claimed: ClaimedClient, caller: Caller) -> str:
        """The client_id of the public client signing in; a service client is refused (the
        password grant is for the operator's own frontends)."""
        service_client = await self._identify_client(claimed, caller)
        if not service_client.is_public:
            raise UnauthorizedClient("Service clients may not use the password grant.")
        return service_client.client_id

    async def _identify_client(self, claimed: ClaimedClient, caller: Caller) -> IdentifiedClient:
        """The client the grant is for, or `InvalidClient` once its failure is audited."""
        try:
            return await self.client_authenticator.identify(claimed, caller, self.settings)
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.client_authenticator.record_failure(failure, caller)
            raise

    async def _record_failed_login(
        self, user: User | None, sign_in_name: str, caller: Caller
    ) -> None:
        async with unit_of_work(self.session):
            await self.audit.record(
                AuditEventType.login_failed,
                caller=caller,
                user_id=user.id if user else None,
                # A keyed digest, not the name: a mistyped password in the username field stays
                # out of the audit trail, and no list of addresses reverses it.
                identifier_hmac=self.context.audit_hmac.digest(sign_in_name),
            )
