"""The OAuth2 token endpoint's grants, one service for all of them: `password` (first-party
sign-in) and its second step (the MFA grant), `refresh_token` (rotation) and
`client_credentials` (service clients' own tokens).

A registered client uses only the grants it was registered with (`grant_types`; else
`unauthorized_client`); the configured public clients (AUTH_PUBLIC_CLIENTS) use the password
and refresh grants. The password grant is for first-party clients only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DomainError, InvalidCredentials
from app.identifiers import normalize_sign_in_name
from app.mail import recovery_code_used_notice
from app.models import User
from app.observability.metrics import current_metrics
from app.repositories import PermissionRepository, UserRepository
from app.services.accounts.second_factors import SecondFactors
from app.services.admin.client_registration import GrantType
from app.services.admin.service_clients import SERVICE_SCOPES
from app.services.authorization.codes import AuthorizationCodes
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import run_unit_of_work, unit_of_work
from app.services.tokens.assurance import PASSWORD, RECOVERY_CODE, TOTP
from app.services.tokens.client_authentication import (
    ClaimedClient,
    ClientAuthenticator,
    ClientCredentials,
    IdentifiedClient,
    InvalidClient,
    UnauthorizedClient,
)
from app.services.tokens.mfa_challenges import (
    InvalidMfaToken,
    MfaChallenges,
    MfaRequired,
    WrongSecondFactor,
)
from app.services.tokens.scopes import OFFLINE_ACCESS, UserScopes
from app.services.tokens.sign_in_limits import Account, SignInLimits
from app.services.tokens.sign_in_sessions import (
    InvalidGrant,
    IssuedSession,
    RefreshTokenReused,
    SignInSessions,
)
from app.services.tokens.token_issuer import TokenIssuer, TokenResponse


class LoginFailed(InvalidCredentials):
    """Unknown account, wrong password or inactive account: deliberately indistinguishable."""

    default_detail = "Invalid username or password."


class InvalidScope(DomainError):
    default_detail = "The requested scope exceeds the scopes this client may have."


MFA_GRANT_TYPE = "urn:authsvc:params:oauth:grant-type:mfa"
# Whom the hosted sign-in page's MFA challenges are for. No client can have this id (client
# ids hold no ':'), so no client answers a challenge the page opened, nor the page a client's.
BROWSER_CLIENT_ID = "authsvc:hosted-sign-in"


@dataclass(frozen=True, slots=True)
class PendingSecondFactor:
    """A first factor proved by a user with a second one: the challenge's `mfa_token`."""

    mfa_token: str


@dataclass(frozen=True, slots=True)
class SecondFactorOutcome:
    """What a second-factor answer did: a new session, or a failure (`voided`: the token is
    no good any more)."""

    issued: IssuedSession | None
    voided: bool


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
        self.challenges = MfaChallenges(session, context.settings)
        self.second_factors = SecondFactors(session, context.data_encryptor)
        self.codes = AuthorizationCodes(session, context.settings)

    async def password_grant(
        self,
        *,
        username: str,
        password: str,
        scope: str | None,
        caller: Caller,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """Sign in with a password: a new session and its first token pair, for a first-party
        client allowed the password grant (any other is `UnauthorizedClient`). The refresh
        token is left out for a client not allowed the refresh grant."""
        signing_in = await self._password_client(claimed, caller)
        issued = await self._password_sign_in(
            username, password, scope, caller, signing_in.client_id
        )
        current_metrics().token_issued("password")
        return self._for_session(issued, signing_in)

    async def browser_sign_in(
        self, *, username: str, password: str, caller: Caller
    ) -> IssuedSession:
        """Sign in on the hosted sign-in page: a new browser session (its cookie secret in
        `browser_secret`), under the same limits as the password grant. Raises `LoginFailed`,
        or `MfaRequired` for a user with a second factor (answered with
        `browser_second_factor`)."""
        return await self._password_sign_in(username, password, None, caller, BROWSER_CLIENT_ID)

    async def _password_sign_in(
        self, username: str, password: str, scope: str | None, caller: Caller, client_id: str
    ) -> IssuedSession:
        sign_in_name = normalize_sign_in_name(username)
        user = await self.users.get_by_identifier(sign_in_name)
        # Hand the connection back before queueing for the hash: a sign-in flood must not
        # hold the pool while it waits (loaded attributes stay readable).
        await self.session.close()
        account = Account.of(user, sign_in_name)
        attempt = await self.sign_in_limits.reserve(account, caller.ip)
        try:
            issued = await self._sign_in(user, password, scope, caller, client_id)
        except LoginFailed:
            # The slots stay taken: they are the failure counts.
            await self._record_failed_login(user, sign_in_name, caller)
            current_metrics().login_failed()
            raise
        except BaseException:
            await attempt.release()  # a fault, not a failed guess
            raise
        if isinstance(issued, PendingSecondFactor):
            # The password was right: its slots are given back. The address's failure count
            # stays until the second factor is passed too: the wrong codes in it were guessed
            # by someone who knows the password, and a right password clearing them would
            # let guesses interleaved with password grants run on without limit.
            await attempt.release()
            raise MfaRequired(issued.mfa_token, self.challenges.ttl_seconds)
        await self.sign_in_limits.succeeded(attempt, account, caller.ip)
        current_metrics().login_ok()
        return issued

    async def _challenge(
        self,
        user: User,
        client_id: str,
        scope: str,
        first_factor: str,
        caller: Caller,
        now: datetime,
    ) -> PendingSecondFactor:
        mfa_token = await self.challenges.open(
            user, client_id=client_id, scope=scope, first_factor=first_factor, now=now
        )
        await self.audit.record(
            AuditEventType.mfa_challenged,
            caller=caller,
            user_id=user.id,
            actor_id=user.id,
            first_factor=first_factor,
        )
        return PendingSecondFactor(mfa_token)

    async def mfa_grant(
        self,
        *,
        mfa_token: str,
        otp: str | None,
        recovery_code: str | None,
        caller: Caller,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """The second step of a sign-in: the `mfa_token` of `mfa_required` and a code from
        the user's authenticator (`otp`) or one of their recovery codes: a new session at
        `acr` "aal2", and its first token pair.

        A guess draws on the sign-in budgets before it is checked (a wrong code is a failed
        sign-in); the challenge's row lock makes parallel guesses count one by one, and the
        `AUTH_MFA_MAX_ATTEMPTS`th wrong code voids the token. Only the client that signed in
        may answer, and only while it is allowed the password grant.
        """
        client = await self._password_client(claimed, caller)
        issued = await self._second_step(mfa_token, otp, recovery_code, caller, client.client_id)
        current_metrics().token_issued(MFA_GRANT_TYPE)
        return self._for_session(issued, client)

    async def browser_second_factor(
        self, *, mfa_token: str, otp: str | None, recovery_code: str | None, caller: Caller
    ) -> IssuedSession:
        """The hosted sign-in page's second step: the `mfa_token` of `browser_sign_in`'s
        `MfaRequired` and a code; a browser session at `acr` "aal2". The same rules and
        limits as the MFA grant; a challenge opened for a client is not answered here, nor
        this page's at the token endpoint."""
        return await self._second_step(mfa_token, otp, recovery_code, caller, BROWSER_CLIENT_ID)

    async def _second_step(
        self,
        mfa_token: str,
        otp: str | None,
        recovery_code: str | None,
        caller: Caller,
        client_id: str,
    ) -> IssuedSession:
        pending = await self.challenges.find(mfa_token)
        user = await self.users.get_by_id(pending.user_id) if pending is not None else None
        await self.session.close()  # no connection held while waiting for a reservation
        if pending is None or user is None:
            raise InvalidMfaToken
        account = Account.of(user, user.email)
        attempt = await self.sign_in_limits.reserve(account, caller.ip)
        try:
            outcome = await run_unit_of_work(
                self.session,
                lambda: self._answer(mfa_token, otp, recovery_code, client_id, caller),
            )
        except BaseException:
            await attempt.release()  # refused before any code was checked, or a fault
            raise
        if outcome.issued is None:
            # The slots stay taken: they are the failure counts.
            current_metrics().login_failed()
            raise InvalidMfaToken if outcome.voided else WrongSecondFactor
        await self.sign_in_limits.succeeded(attempt, account, caller.ip)
        current_metrics().login_ok()
        return outcome.issued

    async def _answer(
        self,
        mfa_token: str,
        otp: str | None,
        recovery_code: str | None,
        client_id: str,
        caller: Caller,
    ) -> SecondFactorOutcome:
        now = self.clock()
        challenge = await self.challenges.lock(mfa_token)
        if challenge is None or not self.challenges.is_open(
            challenge, client_id=client_id, now=now
        ):
            raise InvalidMfaToken  # nothing was checked: the attempt's slots are given back
        user = await self.users.get_for_update(challenge.user_id)
        if user is None or not user.is_active or user.token_version != challenge.token_version:
            self.challenges.spend(challenge, now)
            return SecondFactorOutcome(issued=None, voided=True)
        method = await self._second_factor(user, otp, recovery_code, now)
        if method is None:
            voided = self.challenges.count_failure(challenge, now)
            await self.audit.record(
                AuditEventType.login_failed,
                caller=caller,
                user_id=user.id,
                check=RECOVERY_CODE if recovery_code is not None else TOTP,
                mfa_token_voided=voided,
            )
            return SecondFactorOutcome(issued=None, voided=voided)
        self.challenges.spend(challenge, now)
        user.last_login_at = now
        issued = await self._start(
            user,
            caller,
            challenge.scope,
            challenge.client_id,
            [challenge.first_factor, method],
            now,
        )
        await self.audit.record(
            AuditEventType.login_succeeded,
            caller=caller,
            user_id=user.id,
            actor_id=user.id,
            session_id=str(issued.session.id),
            second_factor=method,
        )
        if method == RECOVERY_CODE:
            remaining = await self.second_factors.unused_recovery_codes(user.id)
            await self.audit.record(
                AuditEventType.recovery_code_used,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
                remaining=remaining,
            )
            await self.outbox.enqueue(
                self.session, recovery_code_used_notice(user.email, remaining)
            )
        return SecondFactorOutcome(issued=issued, voided=False)

    async def _second_factor(
        self, user: User, otp: str | None, recovery_code: str | None, now: datetime
    ) -> str | None:
        """The method (`otp` or `rc`) the code proved, or None for a wrong or used code."""
        if recovery_code is not None:
            spent = await self.second_factors.spend_recovery_code(user.id, recovery_code, now)
            return RECOVERY_CODE if spent else None
        factor = await self.second_factors.locked_factor(user.id)
        if otp is None or factor is None or factor.confirmed_at is None:
            return None
        return TOTP if self.second_factors.accept_totp(factor, otp, now) else None

    async def _sign_in(
        self,
        user: User | None,
        password: str,
        scope: str | None,
        caller: Caller,
        client_id: str,
    ) -> IssuedSession | PendingSecondFactor:
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

        async def start_session() -> IssuedSession | PendingSecondFactor:
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
            if user.mfa_enabled:  # read back by record_sign_in, under its lock
                return await self._challenge(user, client_id, granted, PASSWORD, caller, now)
            issued = await self._start(user, caller, granted, client_id, [PASSWORD], now)
            await self.audit.record(
                AuditEventType.login_succeeded,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
                session_id=str(issued.session.id),
            )
            return issued

        return await run_unit_of_work(self.session, start_session)

    async def _start(
        self,
        user: User,
        caller: Caller,
        scope: str,
        client_id: str,
        methods: list[str],
        now: datetime,
    ) -> IssuedSession:
        """A new session for `client_id`, or a browser session for the hosted sign-in page's
        `BROWSER_CLIENT_ID` (which belongs to no client)."""
        if client_id == BROWSER_CLIENT_ID:
            return await self.sessions.start(
                user, caller, scope="", client_id=None, methods=methods, now=now, browser=True
            )
        return await self.sessions.start(
            user, caller, scope=scope, client_id=client_id, methods=methods, now=now
        )

    async def refresh_grant(
        self,
        *,
        refresh_token: str,
        caller: Caller,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """Rotate a refresh token: spend it, issue the next pair in the same session.

        Only a client allowed the refresh grant (else `UnauthorizedClient`), and only the one
        the session was issued to (RFC 6749 section 6); the new pair carries only the scopes
        the user may have now.
        """
        service_client = await self._identify_client(claimed, caller)
        if not service_client.may_use(GrantType.refresh_token):
            raise UnauthorizedClient("This client may not use the refresh_token grant.")
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

    async def authorization_code_grant(
        self,
        *,
        code: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        caller: Caller,
        claimed: ClaimedClient,
    ) -> TokenResponse:
        """Redeem an authorization code (RFC 6749 4.1.3, RFC 7636 4.5): the client it was
        issued to, with the same `redirect_uri` and the PKCE verifier, gets a new session's
        tokens (an ID token with the request's `nonce` when `openid` was granted; a refresh
        token when the client may refresh and is first-party or was granted
        `offline_access`).

        Anything wrong is `InvalidGrant`, and spends the code all the same. A code presented
        again after its redemption ends the session it opened (RFC 6749 4.1.2), so of two
        parallel redemptions exactly one gets tokens, and those stop working."""
        client = await self._identify_client(claimed, caller)
        if not client.may_use(GrantType.authorization_code):
            raise UnauthorizedClient("This client may not use the authorization_code grant.")
        now = self.clock()
        outcome = await run_unit_of_work(
            self.session,
            lambda: self._redeem(code, redirect_uri, code_verifier, client, caller, now),
        )
        if outcome is None:
            raise InvalidGrant("The authorization code is invalid, expired or was already used.")
        issued, nonce = outcome
        current_metrics().token_issued("authorization_code")
        return self.issuer.for_session(issued, nonce=nonce)

    async def _redeem(
        self,
        code: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        client: IdentifiedClient,
        caller: Caller,
        now: datetime,
    ) -> tuple[IssuedSession, str | None] | None:
        """The new session and the request's nonce, or None (the code's spending and a
        replay's consequences are committed either way)."""
        redemption = await self.codes.redeem(code, now)
        spent = redemption.code
        if spent is None:
            return None
        if redemption.replayed:
            if spent.issued_session_id is not None:
                await self.sessions.end(spent.issued_session_id, now, "authorization_code_reuse")
            await self.audit.record(
                AuditEventType.authorization_code_reused,
                caller=caller,
                user_id=spent.user_id,
                client_id=spent.client_id,
                session_id=str(spent.issued_session_id) if spent.issued_session_id else None,
            )
            return None
        if not self.codes.is_valid_for(
            spent,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            now=now,
        ):
            return None
        user = await self.users.get_by_id(spent.user_id)
        browser_session = await self.sessions.get(spent.browser_session_id)
        if (
            user is None
            or browser_session is None
            or user.token_version != spent.token_version
            or not self.sessions.is_usable(browser_session, user, now)
        ):
            return None  # signed out (or out everywhere) since the code was issued
        scopes = spent.scope.split()
        issued = await self.sessions.start_from_browser(
            browser_session,
            user,
            caller,
            scope=spent.scope,
            client_id=client.client_id,
            now=now,
            with_refresh_token=client.may_use(GrantType.refresh_token)
            and (client.is_first_party or OFFLINE_ACCESS in scopes),
        )
        spent.issued_session_id = issued.session.id
        await self.audit.record(
            AuditEventType.login_succeeded,
            caller=caller,
            user_id=user.id,
            actor_id=user.id,
            session_id=str(issued.session.id),
            client_id=client.client_id,
            grant_type="authorization_code",
        )
        return issued, spent.nonce

    async def client_credentials_grant(
        self, credentials: ClientCredentials | None, *, scope: str | None, caller: Caller
    ) -> TokenResponse:
        """An access token for the authenticated client, if it is allowed this grant (else
        `UnauthorizedClient`). Without `scope` it gets every scope it is allowed; asking for
        more than that is `InvalidScope`, not a silent narrowing."""
        try:
            service_client = await self.client_authenticator.authenticate(credentials, caller)
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.client_authenticator.record_failure(failure, caller)
            raise
        if not service_client.may_use(GrantType.client_credentials):
            raise UnauthorizedClient("This client may not use the client_credentials grant.")
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

    async def _password_client(self, claimed: ClaimedClient, caller: Caller) -> IdentifiedClient:
        """The client signing a user in with a password: a first-party client allowed the
        password grant (the configured public clients are). Any other is refused: the
        password grant is for the operator's own applications."""
        client = await self._identify_client(claimed, caller)
        if not (client.is_first_party and client.may_use(GrantType.password)):
            raise UnauthorizedClient(
                "This client may not use the password grant: it is for first-party clients "
                "registered for it."
            )
        return client

    def _for_session(self, issued: IssuedSession, client: IdentifiedClient) -> TokenResponse:
        """The token response for a new session, without the refresh token when the client
        may not use it."""
        response = self.issuer.for_session(issued)
        if client.may_use(GrantType.refresh_token):
            return response
        return replace(response, refresh_token=None)

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
