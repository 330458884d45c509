"""How the authorization endpoint's answers reach the browser: a redirect to the client, to the
sign-in page (and back), or the consent page. Shared by `/oauth/authorize` and the hosted
pages, which come back to the same request."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request, Response, status
from fastapi.responses import RedirectResponse

from app.api.pages.rendering import render_error, render_page
from app.api.pages.scope_words import describe_scopes
from app.api.pages.security_headers import form_action_source
from app.services.authorization.authorization_service import (
    ConsentNeeded,
    Redirect,
    SignInNeeded,
)
from app.services.authorization.requests import AuthorizationRequest, AuthorizationTargetInvalid

AUTHORIZE_PATH = "/oauth/authorize"
SIGN_IN_PATH = "/login"
CONSENT_PATH = "/consent"


def sign_in_url(request: AuthorizationRequest) -> str:
    """The sign-in page, coming back to `request` afterwards (without what the sign-in
    satisfies: `prompt=login`, `max_age`)."""
    parameters = {"next": f"{AUTHORIZE_PATH}?{request.query(after_sign_in=True)}"}
    if request.login_hint:
        parameters["login_hint"] = request.login_hint
    return f"{SIGN_IN_PATH}?{urlencode(parameters)}"


def is_return_address(next_url: str) -> bool:
    """Whether the sign-in page may send the browser to `next_url` afterwards: only back to
    the authorization endpoint of this service (never elsewhere: no open redirect)."""
    return (
        next_url.startswith(f"{AUTHORIZE_PATH}?")
        and "\\" not in next_url
        and next_url.isascii()
        and next_url.isprintable()
    )


def consent_page(request: Request, answer: ConsentNeeded) -> Response:
    return render_page(
        request,
        "consent.html",
        {
            "action": CONSENT_PATH,
            "client_name": answer.request.client_name,
            "client_id": answer.request.client_id,
            "scopes": describe_scopes(answer.scopes),
            "user_label": answer.user_label,
            "request": answer.request.query(),
        },
        # The decision's POST redirects to the client: Chromium applies form-action there too.
        form_action_sources=(form_action_source(answer.request.redirect_uri),),
    )


def respond(
    request: Request,
    answer: SignInNeeded | ConsentNeeded | Redirect,
    *,
    status_code: int = status.HTTP_302_FOUND,
) -> Response:
    """The browser's response to an answer: a redirect (`status_code`: 302 after a GET, 303
    after a form POST) or, for consent, the consent page itself."""
    if isinstance(answer, Redirect):
        return RedirectResponse(answer.url, status_code=status_code)
    if isinstance(answer, SignInNeeded):
        return RedirectResponse(sign_in_url(answer.request), status_code=status_code)
    return consent_page(request, answer)


def invalid_target_page(request: Request, error: AuthorizationTargetInvalid) -> Response:
    """The error page for a request that cannot be answered with a redirect."""
    return render_error(
        request,
        title="This sign-in link is not valid",
        message=str(error.detail),
        status_code=status.HTTP_400_BAD_REQUEST,
    )
