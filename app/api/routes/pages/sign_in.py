"""The hosted sign-in page: a password, then the second factor when the account has one, or a
button per configured provider (GitHub, Google, OpenID Connect). It opens a browser session (its
cookie) and goes back to the authorization request that sent the browser here; the limits are
those of the token endpoint's password and MFA grants.

A provider button (`/login/{provider}`) sends the browser to the provider; it comes back
through the service's callback (`/auth/oauth/{provider}/callback`, the one registered at the
provider), which hands the flow to `finish_provider_sign_in` here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from app.api.authorization_answers import SIGN_IN_PATH, is_return_address
from app.api.browser_session import keep_browser_session
from app.api.deps import (
    AuthorizationServiceDep,
    CallerDep,
    OAuthLoginServiceDep,
    TokenServiceDep,
)
from app.api.oauth_errors import NO_STORE
from app.api.oauth_flow_cookie import forget_flow_cookie, keep_flow_cookie
from app.api.pages import csrf
from app.api.pages.rendering import render_csrf_refusal, render_error, render_page
from app.api.pages.security_headers import form_action_source
from app.config import Settings
from app.errors import (
    BadGateway,
    Conflict,
    DomainError,
    InvalidCredentials,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from app.runtime import runtime_of
from app.services.authorization.authorization_service import AuthorizationService
from app.services.authorization.requests import (
    AuthorizationRefused,
    AuthorizationTargetInvalid,
    parse_query,
)
from app.services.common.caller import Caller
from app.services.oauth.login import BrowserSecondStep, OAuthLoginService
from app.services.tokens.mfa_challenges import InvalidMfaToken, MfaRequired, WrongSecondFactor
from app.services.tokens.token_service import LoginFailed

router = APIRouter(tags=["hosted pages"], include_in_schema=False)

FormValue = Annotated[str | None, Form(max_length=4096)]
NextValue = Annotated[str | None, Query(alias="next", max_length=8000)]

# The names the buttons give the built-in kinds; an OpenID Connect provider goes by its own.
_PROVIDER_LABELS = {"github": "GitHub", "google": "Google"}


@dataclass(frozen=True, slots=True)
class ProviderButton:
    label: str
    url: str


def _return_address(next_url: str | None) -> str:
    return next_url if next_url and is_return_address(next_url) else ""


def provider_buttons(settings: Settings, next_url: str) -> list[ProviderButton]:
    """A button per configured provider, in the order configured: a sign-in there, coming
    back to `next_url` (a return address, or "")."""
    query = f"?{urlencode({'next': next_url})}" if next_url else ""
    return [
        ProviderButton(
            label=f"Sign in with {_PROVIDER_LABELS.get(provider.kind or '', name)}",
            url=f"{SIGN_IN_PATH}/{quote(name, safe='')}{query}",
        )
        for name, provider in settings.oauth_providers.items()
    ]


async def continuation_sources(
    authorization: AuthorizationService, next_address: str
) -> tuple[str, ...]:
    """The CSP `form-action` sources a sign-in form needs beyond this service: the redirect
    URI of the authorization request it returns to, once that request's client has it
    registered. Chromium holds every redirect after a form POST to `form-action`, and a
    sign-in's redirects end at the client."""
    if not next_address:
        return ()
    try:
        checked = await authorization.check(parse_query(next_address.partition("?")[2]))
    except AuthorizationRefused as refused:
        return (form_action_source(refused.redirect_uri),)  # a registered one: errors go there
    except AuthorizationTargetInvalid:
        return ()
    return (form_action_source(checked.redirect_uri),)


def _sign_in_form(
    request: Request,
    next_url: str,
    *,
    sources: tuple[str, ...],
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    settings = runtime_of(request.app).settings
    return render_page(
        request,
        "login.html",
        {
            "action": SIGN_IN_PATH,
            "next": next_url,
            "username": username,
            "error": error,
            "providers": provider_buttons(settings, next_url),
        },
        status_code=status_code,
        form_action_sources=sources,
    )


def _second_factor_form(
    request: Request,
    next_url: str,
    mfa_token: str,
    *,
    sources: tuple[str, ...],
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "mfa.html",
        {"action": SIGN_IN_PATH, "next": next_url, "mfa_token": mfa_token, "error": error},
        status_code=status_code,
        form_action_sources=sources,
    )


@router.get("/login", response_class=Response)
async def sign_in_page(
    request: Request,
    authorization: AuthorizationServiceDep,
    next_url: NextValue = None,
    login_hint: Annotated[str | None, Query(max_length=320)] = None,
) -> Response:
    """The sign-in form; afterwards the browser goes to `next` (an authorization request)."""
    next_address = _return_address(next_url)
    sources = await continuation_sources(authorization, next_address)
    return _sign_in_form(request, next_address, sources=sources, username=login_hint or "")


@router.post("/login", response_class=Response)
async def sign_in(
    request: Request,
    service: TokenServiceDep,
    authorization: AuthorizationServiceDep,
    caller: CallerDep,
    csrf_token: FormValue = None,
    next_url: Annotated[str | None, Form(alias="next", max_length=8000)] = None,
    username: FormValue = None,
    password: FormValue = None,
    mfa_token: FormValue = None,
    otp: FormValue = None,
    recovery_code: FormValue = None,
) -> Response:
    """A password (or, with `mfa_token`, a second factor's code): on success the browser
    session's cookie and a redirect to `next`."""
    next_address = _return_address(next_url)
    try:
        csrf.verify(request, csrf_token)
    except csrf.CsrfRejected:
        return render_csrf_refusal(request, back_url=SIGN_IN_PATH)
    sources = await continuation_sources(authorization, next_address)
    try:
        if mfa_token:
            issued = await service.browser_second_factor(
                mfa_token=mfa_token,
                # The page's two forms send one or the other.
                otp=otp or None,
                recovery_code=None if otp else recovery_code or None,
                caller=caller,
            )
        else:
            issued = await service.browser_sign_in(
                username=username or "", password=password or "", caller=caller
            )
    except MfaRequired as pending:
        return _second_factor_form(request, next_address, pending.mfa_token, sources=sources)
    except InvalidMfaToken:
        return _sign_in_form(
            request,
            next_address,
            sources=sources,
            error="That sign-in expired. Sign in again.",
            status_code=400,
        )
    except WrongSecondFactor:
        return _second_factor_form(
            request,
            next_address,
            mfa_token or "",
            sources=sources,
            error="That code is not right, or was already used.",
            status_code=400,
        )
    except LoginFailed:
        return _sign_in_form(
            request,
            next_address,
            sources=sources,
            username=username or "",
            error="Invalid username or password.",
            status_code=400,
        )
    except RateLimited as limited:
        message = f"Too many attempts. Try again in {limited.retry_after_seconds} seconds."
        throttled = (
            _second_factor_form(
                request, next_address, mfa_token, sources=sources, error=message, status_code=429
            )
            if mfa_token
            else _sign_in_form(
                request,
                next_address,
                sources=sources,
                username=username or "",
                error=message,
                status_code=429,
            )
        )
        throttled.headers["Retry-After"] = str(limited.retry_after_seconds)
        return throttled
    except ServiceUnavailable:
        return render_error(
            request,
            title="Sign-in is unavailable",
            message="Something is wrong on our side. Try again in a moment.",
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    assert issued.browser_secret is not None
    return _signed_in(request, next_address, issued.browser_secret, service.settings)


def _signed_in(
    request: Request, next_address: str, browser_secret: str, settings: Settings
) -> Response:
    """The end of a sign-in: the browser session's cookie, and a redirect to `next_address`
    (or, without one, the "signed in" page)."""
    response: Response
    if next_address:
        response = RedirectResponse(next_address, status_code=status.HTTP_303_SEE_OTHER)
    else:
        response = render_page(request, "signed_out.html", {"message": "You are signed in."})
    keep_browser_session(response, browser_secret, settings)
    return response


# --- signing in with a provider --------------------------------------------------------------


@router.get("/login/{provider}", response_class=Response)
async def sign_in_with_provider(
    provider: str, request: Request, service: OAuthLoginServiceDep, next_url: NextValue = None
) -> Response:
    """A provider's button: off to the provider (302) with the cookie binding the flow to
    this browser; it comes back through the service's callback and then goes to `next` (an
    authorization request; anything else is dropped, and the sign-in ends on the "signed
    in" page)."""
    next_address = _return_address(next_url)
    try:
        started = await service.start(provider, None, return_to=next_address)
    except DomainError as refused:
        back = f"{SIGN_IN_PATH}?{urlencode({'next': next_address})}" if next_address else None
        return _provider_refusal_page(request, refused, back_url=back or SIGN_IN_PATH)
    response = RedirectResponse(started.url, status_code=status.HTTP_302_FOUND, headers=NO_STORE)
    keep_flow_cookie(response, started.browser_secret, service.settings)
    return response


async def finish_provider_sign_in(
    request: Request,
    service: OAuthLoginService,
    authorization: AuthorizationService,
    provider: str,
    *,
    code: str | None,
    state: str | None,
    error: str | None,
    browser_secret: str | None,
    caller: Caller,
) -> Response:
    """The provider callback's answer to a flow a button started: the browser session's
    cookie and a redirect back to the authorization request (or the "signed in" page); for a
    user with a second factor, this page's second step; an error page when the sign-in
    cannot be completed (bad, used or foreign state, the provider refusing, an email that
    belongs to another account)."""
    try:
        result = await service.finish_on_page(
            provider,
            code=code,
            state=state,
            error=error,
            browser_secret=browser_secret,
            caller=caller,
        )
    except DomainError as refused:
        return _provider_refusal_page(request, refused, back_url=SIGN_IN_PATH)
    # Checked when the flow started; checked again, since the redirect goes where it says.
    next_address = _return_address(result.return_to)
    if isinstance(result, BrowserSecondStep):
        sources = await continuation_sources(authorization, next_address)
        response = _second_factor_form(request, next_address, result.mfa_token, sources=sources)
    else:
        response = _signed_in(request, next_address, result.browser_secret, service.settings)
    forget_flow_cookie(response)
    return response


def _provider_refusal_page(request: Request, refused: DomainError, *, back_url: str) -> Response:
    return render_error(
        request,
        title="Sign-in did not work",
        message=str(refused.detail),
        status_code=_refusal_status(refused),
        back_url=back_url,
    )


def _refusal_status(refused: DomainError) -> int:
    """The status of the error page: the one the API answers the same refusal with (but 403
    for its 401)."""
    for kind, status_code in (
        (NotFound, status.HTTP_404_NOT_FOUND),
        (Conflict, status.HTTP_409_CONFLICT),
        (BadGateway, status.HTTP_502_BAD_GATEWAY),
        (ServiceUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
        # 401 asks for credentials in a header a browser has no way to send here.
        (InvalidCredentials, status.HTTP_403_FORBIDDEN),
    ):
        if isinstance(refused, kind):
            return status_code
    return status.HTTP_400_BAD_REQUEST
