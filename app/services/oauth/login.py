"""Sign-in and account linking through external providers.

The flow: `start` stores a single-use `state` with the PKCE verifier (and OIDC nonce), bound to
the browser by a cookie secret, and returns the provider's authorization URL; `finish` spends
the state, redeems the code at the provider, and signs in (or links) the identity under these
rules:
- an identity already linked signs its user in;
- an identity whose email matches an existing account is linked only when the provider says
  the email is verified (else 409). If that account was never verified, whoever set its
  password never proved the mailbox (account pre-hijacking): the password is removed, its
  sessions end, and it becomes verified;
- otherwise a new, verified account without password is created.

A signed-in user links another provider with a flow started with their access token. Starting
one needs a recent sign-in (`auth_time`, see `recent_authentication`); the flow is bound to
the session and token version that started it and is void at the callback once that session
has ended or the version moved on. A saved flow therefore survives neither the pre-hijacking
takeover (which ends the squatter's sessions) nor the owner's logout-all or password change.
The owner is mailed whenever a provider is linked to an existing account.

A sign-in started on the hosted sign-in page (`start(..., return_to=...)`, "browser mode")
follows the same account rules but opens a browser session (or the hosted page's second-factor
challenge) instead of issuing tokens, and says where the browser goes next
(`finish_on_page`). Its `state` is marked (`started_on_page`), so that the callback answers
with pages even when the state is unknown, used or expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, InvalidCredentials, InvalidInput, NotFound
from app.mail import provider_linked_notice
from app.models import OAuthAccount, OAuthState, User
from app.observability.metrics import current_metrics
from app.repositories import (
    OAuthAccountRepository,
    OAuthStateRepository,
    SignInSessionRepository,
    UserRepository,
)
from app.repositories.common.base import UniqueViolation
from app.security.opaque_tokens import new_opaque_token, token_digest
from app.services.accounts.second_factors import SecondFactors
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import unit_of_work
from app.services.oauth.providers import ExternalIdentity, Provider
from app.services.tokens.assurance import FEDERATED
from app.services.tokens.bearer_authentication import Principal
from app.services.tokens.mfa_challenges import MfaChallenges, MfaRequired
from app.services.tokens.recent_authentication import RecentAuthentication
from app.services.tokens.sign_in_sessions import IssuedSession, SignInSessions
from app.services.tokens.token_issuer import TokenIssuer, TokenResponse
from app.services.tokens.token_service import BROWSER_CLIENT_ID

# The mark of a browser-mode flow's `state`. It decides only how the callback answers (pages or
# JSON), never what it does: the state's row says that, and a state is matched whole.
PAGE_STATE_PREFIX = "page."


class UnknownProvider(NotFound):
    default_detail = "No such sign-in provider."


class RedirectNotAllowed(InvalidInput):
    default_detail = "This redirect_uri is not one of the allowed ones (AUTH_OAUTH_REDIRECT_URIS)."


class InvalidState(InvalidInput):
    default_detail = (
        "This sign-in cannot be completed: the state is unknown, used, expired or was started "
        "in another browser. Start again."
    )


class LinkVoided(InvalidState):
    """The link flow outlived the sign-in that started it (its session ended, or the user's
    token version moved on: logout-all, password change or reset, an account takeover)."""

    default_detail = (
        "This link cannot be completed: the sign-in that started it has ended. Sign in again "
        "and start the link again."
    )

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class ProviderDenied(InvalidInput):
    default_detail = "The provider did not authorize the sign-in."


class UnverifiedEmail(Conflict):
    def __init__(self, provider: str) -> None:
        super().__init__(
            f"An account with this email address exists, but {provider} does not confirm the "
            f"address is verified. Sign in to that account, then link {provider} from it."
        )


class NoVerifiedEmail(InvalidInput):
    def __init__(self, provider: str) -> None:
        super().__init__(
            f"{provider} gave no verified email address; verify one there and try again."
        )


class IdentityLinkedElsewhere(Conflict):
    default_detail = "This identity is already linked to another account."


class SignInDisabled(InvalidCredentials):
    default_detail = "This account cannot sign in."


class LastSignInMethod(Conflict):
    default_detail = (
        "This is the only way to sign in to this account; set a password or link another "
        "provider first."
    )


@dataclass(frozen=True, slots=True)
class Authorization:
    url: str
    browser_secret: str  # goes into the HttpOnly cookie; only its digest is stored


@dataclass(frozen=True, slots=True)
class BrowserSignedIn:
    """A browser-mode sign-in that is done: the new browser session's cookie secret, and
    where the browser goes now ("" = nowhere in particular: the "signed in" page)."""

    browser_secret: str
    return_to: str


@dataclass(frozen=True, slots=True)
class BrowserSecondStep:
    """A browser-mode sign-in of a user with a second factor: the hosted sign-in page's
    challenge (answered like its own, `TokenService.browser_second_factor`), and where the
    browser goes afterwards."""

    mfa_token: str
    return_to: str


def started_on_page(state: str | None) -> bool:
    """Whether `state` is that of a flow started on the hosted sign-in page (by its shape
    alone, so also for a state that is no good any more)."""
    return state is not None and state.startswith(PAGE_STATE_PREFIX)


def _code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _link_binding(linking: Principal | None) -> dict[str, Any]:
    """The state's columns that bind a link flow to the user, the session and the token
    version of the access token that started it (none for a sign-in)."""
    if linking is None:
        return {}
    return {
        "link_user_id": linking.user.id,
        "link_session_id": linking.session_id,
        # The Authenticator checked that it is the user's current version.
        "link_token_version": int(linking.claims["ver"]),
    }


class OAuthLoginService(Service):
    def __init__(
        self,
        session: AsyncSession,
        context: ServiceContext,
        *,
        providers: dict[str, Provider],
        http: httpx.AsyncClient,
        issuer: TokenIssuer,
    ) -> None:
        super().__init__(session, context)
        self.providers = providers
        self.http = http
        self.issuer = issuer
        self.states = OAuthStateRepository(session)
        self.accounts = OAuthAccountRepository(session)
        self.users = UserRepository(session)
        self.session_rows = SignInSessionRepository(session)
        self.sessions = SignInSessions(session, context.settings)
        self.audit = AuditTrail(session)
        self.challenges = MfaChallenges(session, context.settings)
        self.second_factors = SecondFactors(session, context.data_encryptor)
        self.recent_authentication = RecentAuthentication(
            context.settings.reauth_max_age_seconds, context.clock
        )

    def provider(self, name: str) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            raise UnknownProvider
        return provider

    def default_redirect_uri(self, provider: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/auth/oauth/{provider}/callback"

    async def start(
        self,
        provider_name: str,
        redirect_uri: str | None,
        *,
        linking: Principal | None = None,
        return_to: str | None = None,
    ) -> Authorization:
        """Begin a sign-in at the provider, or, for the signed-in `linking` user, a link.

        A link needs a recent sign-in (`ReauthenticationRequired` otherwise) and is bound to
        the caller's session and token version.

        With `return_to`, a sign-in from the hosted sign-in page (browser mode), finished by
        `finish_on_page` and then going to `return_to`, which the caller has checked is a
        return address ("" for none). It comes back to the redirect URI given, or the
        service's own callback.
        """
        if linking is not None and return_to is not None:
            raise ValueError("a link flow is not started on the sign-in page")
        provider = self.provider(provider_name)
        if linking is not None:
            self.recent_authentication.require(linking.claims)
        default = self.default_redirect_uri(provider_name)
        redirect_uri = redirect_uri or default
        allowed = self.settings.oauth_redirect_uris or [default]
        if redirect_uri not in allowed:
            raise RedirectNotAllowed
        state, browser_secret = new_opaque_token(), new_opaque_token()
        if return_to is not None:
            state = PAGE_STATE_PREFIX + state
        verifier = secrets.token_urlsafe(64)  # 86 characters, within PKCE's 43..128
        nonce = secrets.token_urlsafe(32) if provider.uses_nonce else None
        url = await provider.authorization_url(
            self.http,
            state=state,
            code_challenge=_code_challenge(verifier),
            nonce=nonce,
            redirect_uri=redirect_uri,
        )
        now = self.clock()
        async with unit_of_work(self.session):
            await self.states.delete_expired(now)
            await self.states.create(
                state_hash=token_digest(state),
                browser_hash=token_digest(browser_secret),
                provider=provider_name,
                code_verifier=verifier,
                nonce=nonce,
                redirect_uri=redirect_uri,
                **_link_binding(linking),
                return_to=return_to,
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.oauth_state_ttl_seconds),
            )
        return Authorization(url=url, browser_secret=browser_secret)

    async def finish(
        self,
        provider_name: str,
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_secret: str | None,
        caller: Caller,
    ) -> TokenResponse | OAuthAccount:
        """Complete the flow: a token response for a sign-in, the new link for a link flow.
        A flow started on the hosted sign-in page is not finished here (`InvalidState`)."""
        pending, identity = await self._identity(
            provider_name, code, state, error, browser_secret, on_page=False
        )
        if pending.link_user_id is not None:
            return await self._link(pending.link_user_id, pending, identity, caller)
        outcome = await self._sign_in(identity, caller, browser=False)
        if not isinstance(outcome, IssuedSession):
            raise MfaRequired(outcome, self.challenges.ttl_seconds)
        current_metrics().token_issued("oauth")
        return self.issuer.for_session(outcome)

    async def finish_on_page(
        self,
        provider_name: str,
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_secret: str | None,
        caller: Caller,
    ) -> BrowserSignedIn | BrowserSecondStep:
        """Complete a flow started on the hosted sign-in page: under the same account rules
        as `finish`, a browser session, or for a user with a second factor the hosted page's
        challenge. Any other flow is not finished here (`InvalidState`)."""
        pending, identity = await self._identity(
            provider_name, code, state, error, browser_secret, on_page=True
        )
        assert pending.return_to is not None  # _spend_state checked the mode
        outcome = await self._sign_in(identity, caller, browser=True)
        if not isinstance(outcome, IssuedSession):
            return BrowserSecondStep(mfa_token=outcome, return_to=pending.return_to)
        assert outcome.browser_secret is not None
        return BrowserSignedIn(browser_secret=outcome.browser_secret, return_to=pending.return_to)

    async def _identity(
        self,
        provider_name: str,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_secret: str | None,
        *,
        on_page: bool,
    ) -> tuple[OAuthState, ExternalIdentity]:
        """Spend the state (of a flow started on the sign-in page or not, as `on_page` says)
        and redeem the code at the provider: the state's row and who the provider says the
        user is."""
        provider = self.provider(provider_name)
        pending = await self._spend_state(provider_name, state, browser_secret, on_page=on_page)
        if error is not None or not code:
            raise ProviderDenied
        identity = await provider.identity(
            self.http,
            code=code,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
            redirect_uri=pending.redirect_uri,
        )
        return pending, identity

    async def _spend_state(
        self, provider_name: str, state: str | None, browser_secret: str | None, *, on_page: bool
    ) -> OAuthState:
        if not state or not browser_secret:
            raise InvalidState
        # Spent in its own transaction before the provider is called: a state works once,
        # whatever happens next.
        async with unit_of_work(self.session):
            pending = await self.states.use(token_digest(state), self.clock())
        same_browser = pending is not None and hmac.compare_digest(
            pending.browser_hash, token_digest(browser_secret)
        )
        if pending is None or not same_browser or pending.provider != provider_name:
            raise InvalidState
        if (pending.return_to is not None) != on_page:
            raise InvalidState
        return pending

    async def _sign_in(
        self, identity: ExternalIdentity, caller: Caller, *, browser: bool
    ) -> IssuedSession | str:
        """Sign the identity's user in (creating or linking the account as the rules say): a
        new session (a browser session for `browser`), or the `mfa_token` of a second-factor
        challenge for a user with one."""
        try:
            async with unit_of_work(self.session):
                link = await self.accounts.get_by_provider_account(
                    identity.provider, identity.account_id
                )
                created = adopted = False
                if link is not None:
                    user = await self._user(link.user_id)
                    if identity.email:
                        await self.accounts.update_account(link, account_email=identity.email)
                else:
                    existing = (
                        await self.users.get_by_email(identity.email) if identity.email else None
                    )
                    if existing is not None and not identity.email_verified:
                        raise UnverifiedEmail(identity.provider)
                    if existing is None:
                        user, created = await self._create_user(identity), True
                    else:
                        user, adopted = existing, True
                        await self._adopt(user, identity, caller)
                if not user.is_active:
                    raise SignInDisabled
                outcome = await self._open_session(user, caller, browser=browser)
                await self.audit.record(
                    AuditEventType.oauth_login,
                    caller=caller,
                    user_id=user.id,
                    actor_id=user.id,
                    provider=identity.provider,
                    created=created,
                    **(
                        {"session_id": str(outcome.session.id)}
                        if isinstance(outcome, IssuedSession)
                        else {"mfa_required": True}
                    ),
                )
                if adopted:
                    await self._notify_linked(user, identity)
        except UniqueViolation:
            # Someone registered this email, or linked this identity, a moment ago.
            raise Conflict("This account changed meanwhile; try signing in again.") from None
        except UnverifiedEmail:
            # After the rollback, on its own.
            await self._record_refusal(identity, "email_not_verified", caller)
            raise
        return outcome

    async def _open_session(
        self, user: User, caller: Caller, *, browser: bool
    ) -> IssuedSession | str:
        """A session for the first-party client, or a browser session for `browser` (the
        hosted sign-in page); for a user with a second factor, the `mfa_token` of a challenge
        for the one or the other instead."""
        now = self.clock()
        if user.mfa_enabled:
            # A provider is a first factor like a password: the second still applies. The
            # hosted page's challenge is answered only on that page, a client's only by it.
            return await self.challenges.open(
                user,
                client_id=BROWSER_CLIENT_ID if browser else self.settings.first_party_client_id,
                scope="",
                first_factor=FEDERATED,
                now=now,
            )
        user.last_login_at = now
        return await self.sessions.start(
            user,
            caller,
            scope="",
            client_id=None if browser else self.settings.first_party_client_id,
            methods=[FEDERATED],
            now=now,
            browser=browser,
        )

    async def _create_user(self, identity: ExternalIdentity) -> User:
        if not identity.email or not identity.email_verified:
            raise NoVerifiedEmail(identity.provider)
        user = await self.users.create(
            email=identity.email,
            full_name=identity.name[:200] if identity.name else None,
            hashed_password=None,
            is_verified=True,
        )
        await self.accounts.add_account(
            user.id, identity.provider, identity.account_id, account_email=identity.email
        )
        return user

    async def _adopt(self, user: User, identity: ExternalIdentity, caller: Caller) -> None:
        """Link a verified provider identity to the existing account with its email.

        An account nobody verified may have been set up by a squatter waiting for the owner:
        the owner takes it over clean, without the squatter's password, sessions or links.
        """
        defended = not user.is_verified
        second_factor_removed = False
        if defended:
            await self.accounts.delete_many(
                [link.id for link in await self.accounts.list_for_user(user.id)]
            )
        await self.accounts.add_account(
            user.id, identity.provider, identity.account_id, account_email=identity.email
        )
        if defended:
            user.hashed_password = None
            user.is_verified = True
            user.token_version += 1
            # A second factor on an account nobody verified is the squatter's, not the owner's.
            second_factor_removed = await self.second_factors.remove_all(user.id)
            user.mfa_enabled = False
            await self.sessions.end_all(user.id, self.clock(), "oauth_link_unverified_account")
        await self.audit.record(
            AuditEventType.oauth_linked,
            caller=caller,
            user_id=user.id,
            actor_id=user.id,
            provider=identity.provider,
            password_removed=defended,
            second_factor_removed=second_factor_removed,
        )

    async def _link(
        self,
        user_id: uuid.UUID,
        pending: OAuthState,
        identity: ExternalIdentity,
        caller: Caller,
    ) -> OAuthAccount:
        try:
            async with unit_of_work(self.session):
                # Locked: a logout-all or password change committing meanwhile either comes
                # first (and voids the link) or waits for it.
                user = await self.users.get_for_update(user_id)
                if user is None or not user.is_active:  # deleted or deactivated meanwhile
                    raise SignInDisabled
                await self._require_link_still_bound(pending, user)
                link = await self.accounts.get_by_provider_account(
                    identity.provider, identity.account_id
                )
                if link is not None and link.user_id != user.id:
                    raise IdentityLinkedElsewhere
                if link is None:
                    link = await self.accounts.add_account(
                        user.id,
                        identity.provider,
                        identity.account_id,
                        account_email=identity.email,
                    )
                    await self.audit.record(
                        AuditEventType.oauth_linked,
                        caller=caller,
                        user_id=user.id,
                        actor_id=user.id,
                        provider=identity.provider,
                    )
                    await self._notify_linked(user, identity)
        except UniqueViolation:
            raise IdentityLinkedElsewhere from None
        except LinkVoided as voided:
            await self._record_refusal(identity, voided.reason, caller, user_id=user_id)
            raise
        return link

    async def _require_link_still_bound(self, pending: OAuthState, user: User) -> None:
        """Raise `LinkVoided` unless the session that started the link is still live and
        the user's, and the user's token version is the one it was started under."""
        if pending.link_session_id is None or pending.link_token_version is None:
            raise LinkVoided("unbound")  # started before flows were bound to sessions
        sign_in_session = await self.session_rows.get_by_id(pending.link_session_id)
        if sign_in_session is None or sign_in_session.user_id != user.id:
            raise LinkVoided("session_mismatch")
        if not self.sessions.is_usable(sign_in_session, user, self.clock()):
            raise LinkVoided("session_ended")
        if user.token_version != pending.link_token_version:
            raise LinkVoided("token_version_changed")

    async def _notify_linked(self, user: User, identity: ExternalIdentity) -> None:
        """Mail the account's own address that a provider can now sign in to it (queued in
        the transaction that links it)."""
        account = identity.email or f"account {identity.account_id}"
        await self.outbox.enqueue(
            self.session, provider_linked_notice(user.email, identity.provider, account)
        )

    async def _user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_by_id(user_id)
        if user is None:
            raise SignInDisabled
        return user

    async def _record_refusal(
        self,
        identity: ExternalIdentity,
        reason: str,
        caller: Caller,
        *,
        user_id: uuid.UUID | None = None,
    ) -> None:
        """Audit a refused link of `identity` to `user_id`, or else to the account with the
        identity's email, if any."""
        async with unit_of_work(self.session):
            if user_id is None and identity.email:
                existing = await self.users.get_by_email(identity.email)
                user_id = existing.id if existing else None
            await self.audit.record(
                AuditEventType.oauth_link_refused,
                caller=caller,
                user_id=user_id,
                provider=identity.provider,
                reason=reason,
            )

    # --- the signed-in user's links ---------------------------------------------------------

    async def list_links(self, user_id: uuid.UUID) -> list[OAuthAccount]:
        return await self.accounts.list_for_user(user_id)

    async def unlink(self, user_id: uuid.UUID, link_id: uuid.UUID, caller: Caller) -> None:
        """Remove one of the user's links, unless it is their last way to sign in."""
        async with unit_of_work(self.session):
            user = await self.users.get_for_update(user_id)
            link = await self.accounts.get_by_id(link_id)
            if user is None or link is None or link.user_id != user.id:
                raise NotFound("No such linked account.")
            links = await self.accounts.count(user_id=user.id)
            if user.hashed_password is None and links <= 1:
                raise LastSignInMethod
            await self.accounts.delete(link.id)
            await self.audit.record(
                AuditEventType.oauth_unlinked,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
                provider=link.provider,
            )
