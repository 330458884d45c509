"""Request and response bodies about users and their sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

# Letters, digits and . _ - ; never an '@', so a sign-in name is unambiguously one or the other.
Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"),
]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# The policy (length, common passwords) is checked by the service, with settings; this only
# bounds the request so nobody can post a megabyte "password".
PasswordField = Annotated[str, Field(min_length=1, max_length=4096)]


class StrictBody(BaseModel):
    """Unknown fields are refused (422): no mass assignment of privileged attributes."""

    model_config = ConfigDict(extra="forbid")


class RegisterRequest(StrictBody):
    email: EmailStr
    password: PasswordField
    username: Username | None = None
    full_name: FullName | None = None


class ProfileUpdate(StrictBody):
    full_name: FullName | None = None
    username: Username | None = None
    email: EmailStr | None = None
    current_password: PasswordField | None = Field(
        default=None, description="Required when changing `email`."
    )


class PasswordChange(StrictBody):
    current_password: PasswordField
    new_password: PasswordField


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    username: str | None
    full_name: str | None
    is_active: bool
    is_verified: bool
    is_superuser: bool
    roles: list[str]
    created_at: datetime

    @field_validator("roles", mode="before")
    @classmethod
    def _role_names(cls, roles: list[Any]) -> list[str]:
        return sorted(getattr(role, "name", role) for role in roles)


class SessionRead(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool


class ClientGrantRead(BaseModel):
    """What the user granted a third-party client on the consent page."""

    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: datetime
    updated_at: datetime


# Mailed tokens are 43 base64url characters; anything much longer is not one of ours.
MailedToken = Annotated[str, Field(min_length=1, max_length=512)]


class EmailRequest(StrictBody):
    email: EmailStr


class VerifyEmail(StrictBody):
    token: MailedToken


class PasswordReset(StrictBody):
    token: MailedToken
    new_password: PasswordField


class TotpEnrolmentRead(BaseModel):
    """A pending authenticator: add it to the app (type `secret`, or scan `otpauth_uri` as a
    QR code), then confirm with its first code."""

    secret: str
    otpauth_uri: str


class TotpConfirmation(StrictBody):
    code: str = Field(min_length=1, max_length=16, description="A code from the authenticator.")


class RecoveryCodesRead(BaseModel):
    """Single-use codes for signing in without the authenticator. Shown this once: store them
    somewhere safe."""

    recovery_codes: list[str]


class MfaStatusRead(BaseModel):
    totp: bool
    recovery_codes_remaining: int
