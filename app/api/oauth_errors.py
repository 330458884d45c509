"""RFC 6749 section 5.2 error responses for the OAuth endpoints (token, revoke, introspect)."""

from __future__ import annotations

from collections import Counter

from fastapi import Request
from fastapi.responses import JSONResponse

from app.errors import (
    DomainError,
    InvalidCredentials,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
)
from app.services.tokens.client_authentication import InvalidClient, UnauthorizedClient
from app.services.tokens.mfa_challenges import MfaRequired
from app.services.tokens.sign_in_sessions import InvalidGrant
from app.services.tokens.token_service import InvalidScope

# Token responses carry credentials: never cache them (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(
    error: str, description: str, *, status: int = 400, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **(headers or {})},
    )


def mfa_required_error(error: MfaRequired) -> JSONResponse:
    """403 `mfa_required`: the first factor was right, and the client must now send the
    `mfa_token` with a second factor (the form Auth0's MFA API made familiar: an OAuth
    error, so a client library surfaces it as one, with the extra members it needs)."""
    return JSONResponse(
        {
            "error": "mfa_required",
            "error_description": error.detail,
            "mfa_token": error.mfa_token,
            "expires_in": error.expires_in,
        },
        status_code=403,
        headers=NO_STORE,
    )


def oauth_error_from(error: DomainError) -> JSONResponse:
    """The OAuth form of a domain error raised while handling a grant."""
    if isinstance(error, MfaRequired):
        return mfa_required_error(error)
    if isinstance(error, RateLimited):
        # RFC 6749 section 4.1.2.1's code for "try again later" (`slow_down` is the device
        # flow's polling code, RFC 8628); the 429 and Retry-After say how long to wait.
        return oauth_error(
            "temporarily_unavailable",
            error.detail,
            status=429,
            headers={"Retry-After": str(error.retry_after_seconds)},
        )
    if isinstance(error, ServiceUnavailable):
        return oauth_error(
            "temporarily_unavailable",
            error.detail,
            status=503,
            headers={"Retry-After": str(error.retry_after_seconds)},
        )
    if isinstance(error, InvalidClient):
        # RFC 6749 section 5.2: 401, and a challenge for the scheme clients may use.
        return oauth_error(
            "invalid_client",
            error.detail,
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="authsvc"'},
        )
    if isinstance(error, UnauthorizedClient):
        return oauth_error("unauthorized_client", error.detail)
    if isinstance(error, InvalidScope):
        return oauth_error("invalid_scope", error.detail)
    if isinstance(error, PermissionDenied):
        return oauth_error("insufficient_scope", error.detail, status=403)
    if isinstance(error, InvalidCredentials | InvalidGrant):
        return oauth_error("invalid_grant", error.detail)
    return oauth_error("invalid_request", error.detail)


async def repeated_parameter_error(request: Request) -> JSONResponse | None:
    """400 `invalid_request` when a parameter of the endpoint occurs more than once (RFC 6749
    section 3.2: parameters MUST NOT be repeated), so `username=a&username=b` is never
    half-read. Parameters the endpoint does not define are ignored, repeated or not, as
    section 3.2 requires of unrecognised ones."""
    form = await request.form()  # parsed once: FastAPI has already read it for the route
    counts = Counter(key for key, _ in form.multi_items() if key in _form_fields(request))
    repeated = next((key for key, count in counts.items() if count > 1), None)
    if repeated is None:
        return None
    return oauth_error("invalid_request", f"The parameter `{repeated}` is repeated; send it once.")


def _form_fields(request: Request) -> frozenset[str]:
    """The form parameters the matched route declares (its `Form()` fields)."""
    route = request.scope["route"]
    return frozenset(field.alias for field in route.dependant.body_params)
