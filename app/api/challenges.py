"""RFC 6750 section 3 `WWW-Authenticate` challenges for errors on bearer-protected routes."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request
from fastapi.security.utils import get_authorization_scheme_param

from app.errors import DomainError
from app.services.common.authorization import MissingPermission
from app.services.tokens.bearer_authentication import NotAuthenticated
from app.services.tokens.userinfo import InsufficientScope


def bearer_challenge(request: Request, error: DomainError, status: HTTPStatus) -> str | None:
    """The challenge for `error`, or None when it needs none.

    A missing or rejected access token is a 401: bare `Bearer` when none was sent (the client
    should sign in), `error="invalid_token"` when one was (it should refresh or sign in again
    rather than resend it). A token lacking a permission is a 403 `insufficient_scope` naming
    what is missing.
    """
    if isinstance(error, NotAuthenticated) and _sent_bearer_token(request):
        return 'Bearer error="invalid_token"'
    if status == HTTPStatus.UNAUTHORIZED:
        return "Bearer"
    if isinstance(error, MissingPermission | InsufficientScope):
        return f'Bearer error="insufficient_scope", scope="{" ".join(error.missing)}"'
    return None


def _sent_bearer_token(request: Request) -> bool:
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    return scheme.lower() == "bearer" and bool(credentials)
