"""OAuth2 token endpoint bodies (RFC 6749)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TokenResponseBody(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None
    id_token: str | None = Field(
        default=None,
        description="OpenID Connect ID token (a JWT for the client, not for APIs): only when "
        "the granted scope has `openid`.",
    )


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str | None = None


class MfaRequiredBody(OAuthErrorBody):
    """403 from the token endpoint (or a provider callback) for a user with two-step sign-in:
    send `mfa_token` with `otp` or `recovery_code`, grant type
    `urn:authsvc:params:oauth:grant-type:mfa`, within `expires_in` seconds."""

    mfa_token: str
    expires_in: int


class IntrospectionBody(BaseModel):
    """RFC 7662 section 2.2. Only `active` when the token is not active."""

    active: bool
    sub: str | None = None
    client_id: str | None = None
    scope: str | None = None
    exp: int | None = None
    iat: int | None = None
    iss: str | None = None
    aud: str | list[str] | None = None
    jti: str | None = None
    token_type: str | None = None
    username: str | None = None
    email: str | None = None
    roles: list[str] | None = None
    auth_time: int | None = None
    acr: str | None = None
    amr: list[str] | None = None
