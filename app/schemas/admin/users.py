"""Bodies of the user administration routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from app.schemas.accounts import FullName, PasswordField, StrictBody, Username, UserRead
from app.services.admin.users import BulkAction

RoleName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# Enough for any real bulk edit, small enough that one statement stays cheap.
MAX_BULK_IDS = 1000


class AdminUserRead(UserRead):
    """The user object, plus what only administrators see."""

    updated_at: datetime
    last_login_at: datetime | None
    mfa_enabled: bool = Field(description="Whether the user has two-step sign-in on.")


class AdminUserCreate(StrictBody):
    email: EmailStr
    password: PasswordField | None = Field(
        default=None,
        description="Omit to let the user set one through the password-reset flow.",
    )
    username: Username | None = None
    full_name: FullName | None = None
    is_active: bool = True
    is_verified: bool = False
    is_superuser: bool = False
    roles: list[RoleName] = Field(default_factory=list, max_length=100)


class AdminUserUpdate(StrictBody):
    email: EmailStr | None = None
    username: Username | None = None
    full_name: FullName | None = None
    password: PasswordField | None = Field(
        default=None, description="Sets a new password; every session of the user ends."
    )
    is_active: bool | None = None
    is_verified: bool | None = None
    is_superuser: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the caller set. `null` clears `username` and `full_name`; it is not a
        value for the others."""
        values = self.model_dump(exclude_unset=True)
        return {
            name: value
            for name, value in values.items()
            if value is not None or name in ("username", "full_name")
        }


class RoleAssignment(StrictBody):
    roles: list[RoleName] = Field(max_length=100)


class BulkRequest(StrictBody):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK_IDS)
    action: BulkAction


class BulkResult(BaseModel):
    affected: int
