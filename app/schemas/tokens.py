"""OAuth2 token endpoint bodies (RFC 6749)."""

from __future__ import annotations

from pydantic import BaseModel


class TokenResponseBody(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str | None = None
