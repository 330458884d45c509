"""The OpenID Connect userinfo response body (OIDC Core 5.3.2)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UserInfoBody(BaseModel):
    """The signed-in user's claims: `sub` always, the others as the token's scopes allow
    (`email`: email, email_verified; `profile`: name, preferred_username when set)."""

    model_config = ConfigDict(extra="allow")

    sub: str = Field(description="The user's id: the `sub` of their ID and access tokens.")
    email: str | None = None
    email_verified: bool | None = None
    name: str | None = None
    preferred_username: str | None = None
