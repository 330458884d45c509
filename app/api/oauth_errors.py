"""RFC 6749 section 5.2 error responses for the OAuth endpoints (token, revoke, introspect)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.services.client_auth import InvalidClient, UnauthorizedClient
from app.services.client_grants import InvalidScope
from app.services.errors import DomainError, InvalidCredentials, PermissionDenied, RateLimited
from app.services.sessions import InvalidGrant

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


def oauth_error_from(error: DomainError) -> JSONResponse:
    """The OAuth form of a domain error raised while handling a grant."""
    if isinstance(error, RateLimited):
        return oauth_error(
            "slow_down",
            error.detail,
            status=429,
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
