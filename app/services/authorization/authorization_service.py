"""The authorization endpoint's use cases: answer a checked request for the browser's signed-in
user (a code, or the sign-in or consent page first), record the consent page's decision, and
the RP-initiated sign-out of a browser session.

What decides the answer (OpenID Connect Core 3.1.2):
- no live browser session, `prompt=login`, or a sign-in older than `max_age`: the sign-in
  page (`prompt=none`: `login_required`, whoever `login_hint` names, so nothing tells whether
  an account exists);
- a third-party client the user has not yet granted these scopes, or `prompt=consent`: the
  consent page (`prompt=none`: `consent_required`). First-party clients ask no consent;
- otherwise a code, for the scopes the user may hold now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import CLIENT_ID_MAX_LENGTH
from app.models import User, UserSession
from app.repositories import ServiceClientRepository
from app.services.authorization.client_grants import ClientGrants
from app.services.authorization.codes import AuthorizationCodes
from app.services.authorization.redirection import response_url
from app.services.authorization.requests import (
    AuthorizationRefused,
    AuthorizationRequest,
    check_request,
)
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import run_unit_of_work
from app.services.tokens.scopes import UserScopes
from app.services.tokens.sign_in_sessions import SignInSessions


@dataclass(frozen=True, slots=True)
class SignInNeeded:
    """Show the sign-in page, then come back to `request`."""

    request: AuthorizationRequest


@dataclass(frozen=True, slots=True)
class ConsentNeeded:
    """Ask the signed-in user (`user_label`) to grant `scopes` to the request's client."""

    request: AuthorizationRequest
    scopes: tuple[str, ...]
    user_label: str


@dataclass(frozen=True, slots=True)
class LogoutTarget:
    """The client an RP-initiated logout comes from (its name, if known) and where to send
    the browser afterwards (None: the signed-out page)."""

    client_name: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the browser to `url`: the client's redirect URI with the response."""

    url: str


class AuthorizationService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.clients = ServiceClientRepository(session)
        self.sessions = SignInSessions(session, context.settings)
        self.codes = AuthorizationCodes(session, context.settings)
        self.grants = ClientGrants(session)
        self.scopes = UserScopes(session)
        self.audit = AuditTrail(session)

    async def check(self, parameters: Sequence[tuple[str, str]]) -> AuthorizationRequest:
        """The request these parameters make, checked against its client's registration;
        raises `AuthorizationTargetInvalid` or `AuthorizationRefused`."""
        client_ids = [value for name, value in parameters if name == "client_id"]
        client_id = client_ids[-1] if client_ids else ""
        client = None
        if 0 < len(client_id) <= CLIENT_ID_MAX_LENGTH:
            client = await self.clients.get_by_client_id(client_id)
        return check_request(parameters, client)

    def refusal_url(self, refused: AuthorizationRefused) -> str:
        """Where a refusal sends the browser: the client's redirect URI with the error."""
        return response_url(
            refused.redirect_uri,
            {
                "error": refused.error,
                "error_description": refused.detail,
                "state": refused.state,
                "iss": self.settings.issuer,
            },
        )

    async def authorize(
        self, request: AuthorizationRequest, browser_secret: str | None, caller: Caller
    ) -> SignInNeeded | ConsentNeeded | Redirect:
        """The answer to `request` for this browser (see the module's rules). Raises
        `AuthorizationRefused` for `prompt=none` when a page would be needed."""

        async def answer() -> SignInNeeded | ConsentNeeded | Redirect:
            now = self.clock()
            signed_in = await self._signed_in(browser_secret, now)
            if signed_in is None or self._needs_sign_in(request, signed_in[0], now):
                if "none" in request.prompt:
                    raise request.refuse("login_required", "The user is not signed in.")
                return SignInNeeded(request)
            browser_session, user = signed_in
            scopes = await self._grantable(request, user)
            if not request.is_first_party and (
                "consent" in request.prompt
                or not await self.grants.covers(user.id, request.client_id, scopes)
            ):
                if "none" in request.prompt:
                    raise request.refuse("consent_required", "The user has not granted access.")
                return ConsentNeeded(request, scopes, _label(user))
            return await self._issue_code(request, browser_session, user, scopes, now)

        return await run_unit_of_work(self.session, answer)

    async def approve(
        self, request: AuthorizationRequest, browser_secret: str | None, caller: Caller
    ) -> SignInNeeded | Redirect:
        """The consent page's "Allow": remember the grant and answer with a code (the sign-in
        page if the browser session ended meanwhile)."""

        async def approved() -> SignInNeeded | Redirect:
            now = self.clock()
            signed_in = await self._signed_in(browser_secret, now)
            if signed_in is None:
                return SignInNeeded(request)
            browser_session, user = signed_in
            scopes = await self._grantable(request, user)
            await self.grants.remember(user.id, request.client_id, scopes, now)
            await self.audit.record(
                AuditEventType.client_granted,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
                client_id=request.client_id,
                scope=" ".join(scopes),
            )
            return await self._issue_code(request, browser_session, user, scopes, now)

        return await run_unit_of_work(self.session, approved)

    def deny(self, request: AuthorizationRequest) -> Redirect:
        """The consent page's "Deny": `access_denied` back to the client."""
        refused = request.refuse("access_denied", "The user denied the request.")
        return Redirect(self.refusal_url(refused))

    async def logout_target(
        self,
        *,
        hint: Mapping[str, Any] | None,
        client_id: str | None,
        post_logout_redirect_uri: str | None,
        state: str | None,
    ) -> LogoutTarget:
        """Where RP-initiated logout may send the browser afterwards: the client's registered
        `post_logout_redirect_uri` (exact match) with `state`, for the client the ID token hint
        was issued to (or `client_id`; both must agree). Anything else: nowhere (the
        signed-out page), never an unregistered address."""
        hinted = hint.get("aud") if hint else None
        hinted_client = hinted if isinstance(hinted, str) else None
        if client_id and hinted_client and client_id != hinted_client:
            return LogoutTarget(client_name=None, url=None)
        named = client_id or hinted_client
        client = None
        if named and len(named) <= CLIENT_ID_MAX_LENGTH:
            client = await self.clients.get_by_client_id(named)
        if client is None or not client.is_active:
            return LogoutTarget(client_name=None, url=None)
        registered = post_logout_redirect_uri in client.post_logout_redirect_uris
        url = (
            response_url(post_logout_redirect_uri, {"state": state})
            if post_logout_redirect_uri and registered
            else None
        )
        return LogoutTarget(client_name=client.name, url=url)

    async def sign_out(self, browser_secret: str | None, caller: Caller) -> bool:
        """End this browser's session and every session its codes opened (the clients'
        tokens stop working); whether there was one."""

        async def end() -> bool:
            now = self.clock()
            signed_in = await self._signed_in(browser_secret, now)
            if signed_in is None:
                return False
            browser_session, user = signed_in
            ended = await self.sessions.end_browser_session(browser_session.id, now, "logout")
            await self.audit.record(
                AuditEventType.logout,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
                session_id=str(browser_session.id),
                sessions_ended=ended,
            )
            return True

        return await run_unit_of_work(self.session, end)

    async def _signed_in(
        self, browser_secret: str | None, now: datetime
    ) -> tuple[UserSession, User] | None:
        if not browser_secret:
            return None
        return await self.sessions.find_browser_session(browser_secret, now)

    @staticmethod
    def _needs_sign_in(request: AuthorizationRequest, browser: UserSession, now: datetime) -> bool:
        if request.prompt & {"login", "select_account"}:
            return True
        if request.max_age is None:
            return False
        return now - browser.authenticated_at > timedelta(seconds=request.max_age)

    async def _grantable(self, request: AuthorizationRequest, user: User) -> tuple[str, ...]:
        """The requested scopes the user may hold now (permissions they lack are left out)."""
        held = await self.scopes.narrow(
            request.scope, user_id=user.id, is_superuser=user.is_superuser
        )
        return tuple(scope for scope in request.scopes if scope in held.split())

    async def _issue_code(
        self,
        request: AuthorizationRequest,
        browser_session: UserSession,
        user: User,
        scopes: tuple[str, ...],
        now: datetime,
    ) -> Redirect:
        code = await self.codes.issue(
            request, user=user, browser_session=browser_session, scope=" ".join(scopes), now=now
        )
        url = response_url(
            request.redirect_uri,
            {"code": code, "state": request.state, "iss": self.settings.issuer},
        )
        return Redirect(url)


def _label(user: User) -> str:
    return user.email if not user.username else f"{user.username} ({user.email})"
