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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import OAuthAccount, OAuthState, User
from app.observability.metrics import current_metrics
from app.repositories import OAuthAccountRepository, OAuthStateRepository, UserRepository
from app.repositories.base import UniqueViolation
from app.security.opaque_tokens import new_opaque_token, token_digest
from app.services.audit import AuditEventType, AuditTrail
from app.services.client_info import ClientInfo
from app.services.context import Service, ServiceContext
from app.services.errors import Conflict, InvalidCredentials, InvalidInput, NotFound
from app.services.oauth.providers import ExternalIdentity, Provider
from app.services.sessions import SessionManager
from app.services.token_issuer import TokenIssuer, TokenResponse
from app.services.unit_of_work import unit_of_work


class UnknownProvider(NotFound):
    default_detail = "No such sign-in provider."


class RedirectNotAllowed(InvalidInput):
    default_detail = "This redirect_uri is not one of the allowed ones (AUTH_OAUTH_REDIRECT_URIS)."


class InvalidState(InvalidInput):
    default_detail = (
        "This sign-in cannot be completed: the state is unknown, used, expired or was started "
        "in another browser. Start again."
    )


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


def _code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


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
        self.sessions = SessionManager(session, context.settings)
        self.audit = AuditTrail(session)

    def provider(self, name: str) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            raise UnknownProvider
        return provider

    def default_redirect_uri(self, provider: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/auth/oauth/{provider}/callback"

    async def start(
        self, provider_name: str, redirect_uri: str | None, *, link_user_id: uuid.UUID | None
    ) -> Authorization:
        """Begin a sign-in (or, with `link_user_id`, a link) at the provider."""
        provider = self.provider(provider_name)
        default = self.default_redirect_uri(provider_name)
        redirect_uri = redirect_uri or default
        allowed = self.settings.oauth_redirect_uris or [default]
        if redirect_uri not in allowed:
            raise RedirectNotAllowed
        state, browser_secret = new_opaque_token(), new_opaque_token()
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
                link_user_id=link_user_id,
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
        client: ClientInfo,
    ) -> TokenResponse | OAuthAccount:
        """Complete the flow: a token response for a sign-in, the new link for a link flow."""
        provider = self.provider(provider_name)
        pending = await self._spend_state(provider_name, state, browser_secret)
        if error is not None or not code:
            raise ProviderDenied
        identity = await provider.identity(
            self.http,
            code=code,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
            redirect_uri=pending.redirect_uri,
        )
        if pending.link_user_id is not None:
            return await self._link(pending.link_user_id, identity, client)
        return await self._sign_in(identity, client)

    async def _spend_state(
        self, provider_name: str, state: str | None, browser_secret: str | None
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
        return pending

    async def _sign_in(self, identity: ExternalIdentity, client: ClientInfo) -> TokenResponse:
        try:
            async with unit_of_work(self.session):
                link = await self.accounts.get_by_provider_account(
                    identity.provider, identity.account_id
                )
                created = False
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
                        user = existing
                        await self._adopt(user, identity, client)
                if not user.is_active:
                    raise SignInDisabled
                issued = await self.sessions.start(
                    user,
                    client,
                    scope="",
                    client_id=self.settings.first_party_client_id,
                    now=self.clock(),
                )
                user.last_login_at = self.clock()
                await self.audit.record(
                    AuditEventType.oauth_login,
                    client=client,
                    user_id=user.id,
                    actor_id=user.id,
                    provider=identity.provider,
                    created=created,
                    session_id=str(issued.session.id),
                )
        except UniqueViolation:
            # Someone registered this email, or linked this identity, a moment ago.
            raise Conflict("This account changed meanwhile; try signing in again.") from None
        except UnverifiedEmail:
            await self._record_refusal(identity, client)  # after the rollback, on its own
            raise
        current_metrics().token_issued("oauth")
        return self.issuer.for_session(issued)

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

    async def _adopt(self, user: User, identity: ExternalIdentity, client: ClientInfo) -> None:
        """Link a verified provider identity to the existing account with its email.

        An account nobody verified may have been set up by a squatter waiting for the owner:
        the owner takes it over clean, without the squatter's password, sessions or links.
        """
        defended = not user.is_verified
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
            await self.sessions.end_all(user.id, self.clock(), "oauth_link_unverified_account")
        await self.audit.record(
            AuditEventType.oauth_linked,
            client=client,
            user_id=user.id,
            actor_id=user.id,
            provider=identity.provider,
            password_removed=defended,
        )

    async def _link(
        self, user_id: uuid.UUID, identity: ExternalIdentity, client: ClientInfo
    ) -> OAuthAccount:
        try:
            async with unit_of_work(self.session):
                user = await self._user(user_id)
                if not user.is_active:  # deactivated since the flow started
                    raise SignInDisabled
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
                        client=client,
                        user_id=user.id,
                        actor_id=user.id,
                        provider=identity.provider,
                    )
        except UniqueViolation:
            raise IdentityLinkedElsewhere from None
        return link

    async def _user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_by_id(user_id)
        if user is None:
            raise SignInDisabled
        return user

    async def _record_refusal(self, identity: ExternalIdentity, client: ClientInfo) -> None:
        async with unit_of_work(self.session):
            existing = await self.users.get_by_email(identity.email) if identity.email else None
            await self.audit.record(
                AuditEventType.oauth_link_refused,
                client=client,
                user_id=existing.id if existing else None,
                provider=identity.provider,
                reason="email_not_verified",
            )

    # --- the signed-in user's links ---------------------------------------------------------

    async def list_links(self, user_id: uuid.UUID) -> list[OAuthAccount]:
        return await self.accounts.list_for_user(user_id)

    async def unlink(self, user_id: uuid.UUID, link_id: uuid.UUID, client: ClientInfo) -> None:
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
                client=client,
                user_id=user.id,
                actor_id=user.id,
                provider=link.provider,
            )
