"""The hosted sign-in page: a password, then the second factor when the account has one. It
opens a browser session (its cookie) and goes back to the authorization request that sent the
browser here; the limits are those of the token endpoint's password and MFA grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from app.api.authorization_answers import SIGN_IN_PATH, is_return_address
from app.api.browser_session import keep_browser_session
from app.api.deps import CallerDep, TokenServiceDep
from app.api.pages import csrf
from app.api.pages.rendering import render_error, render_page
from app.errors import RateLimited, ServiceUnavailable
from app.services.tokens.mfa_challenges import InvalidMfaToken, MfaRequired, WrongSecondFactor
from app.services.tokens.token_service import LoginFailed

router = APIRouter(tags=["hosted pages"], include_in_schema=False)

FormValue = Annotated[str | None, Form(max_length=4096)]


def _return_address(next_url: str | None) -> str:
    return next_url if next_url and is_return_address(next_url) else ""


def _sign_in_form(
    request: Request,
    next_url: str,
    *,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "login.html",
        {"action": SIGN_IN_PATH, "next": next_url, "username": username, "error": error},
        status_code=status_code,
    )


def _second_factor_form(
    request: Request,
    next_url: str,
    mfa_token: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "mfa.html",
        {"action": SIGN_IN_PATH, "next": next_url, "mfa_token": mfa_token, "error": error},
        status_code=status_code,
    )


@router.get("/login", response_class=Response)
async def sign_in_page(
    request: Request,
    next_url: Annotated[str | None, Query(alias="next", max_length=8000)] = None,
    login_hint: Annotated[str | None, Query(max_length=320)] = None,
) -> Response:
    """The sign-in form; afterwards the browser goes to `next` (an authorization request)."""
    return _sign_in_form(request, _return_address(next_url), username=login_hint or "")


@router.post("/login", response_class=Response)
async def sign_in(
    request: Request,
    service: TokenServiceDep,
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
        return render_error(
            request,
            title="This page expired",
            message="The form was out of date or came from another site. Sign in again.",
            status_code=status.HTTP_403_FORBIDDEN,
            back_url=SIGN_IN_PATH,
        )
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
        return _second_factor_form(request, next_address, pending.mfa_token)
    except InvalidMfaToken:
        return _sign_in_form(
            request, next_address, error="That sign-in expired. Sign in again.", status_code=400
        )
    except WrongSecondFactor:
        return _second_factor_form(
            request,
            next_address,
            mfa_token or "",
            error="That code is not right, or was already used.",
            status_code=400,
        )
    except LoginFailed:
        return _sign_in_form(
            request,
            next_address,
            username=username or "",
            error="Invalid username or password.",
            status_code=400,
        )
    except RateLimited as limited:
        message = f"Too many attempts. Try again in {limited.retry_after_seconds} seconds."
        throttled = (
            _second_factor_form(request, next_address, mfa_token, error=message, status_code=429)
            if mfa_token
            else _sign_in_form(
                request, next_address, username=username or "", error=message, status_code=429
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
    response: Response
    if next_address:
        response = RedirectResponse(next_address, status_code=status.HTTP_303_SEE_OTHER)
    else:
        response = render_page(request, "signed_out.html", {"message": "You are signed in."})
    keep_browser_session(response, issued.browser_secret, service.settings)
    return response
