"""The RFC 6749 section 5.1 token response, as every sign-in route answers it."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.api.oauth_errors import NO_STORE
from app.schemas.tokens import TokenResponseBody
from app.services.tokens.token_issuer import TokenResponse


def token_json(result: TokenResponse, *, scope_requested: bool = False) -> JSONResponse:
    """The token response body, never cached. It carries `scope` whenever one was requested
    or granted, so a client whose scope was narrowed (even to nothing) learns it: RFC 6749
    section 5.1 lets an absent `scope` mean "as requested". `id_token` only when issued."""
    body = TokenResponseBody(
        access_token=result.access_token,
        token_type=result.token_type,
        expires_in=result.expires_in,
        refresh_token=result.refresh_token,
        scope=result.scope if result.scope or scope_requested else None,
        id_token=result.id_token,
    )
    return JSONResponse(body.model_dump(exclude_none=True), headers=NO_STORE)
