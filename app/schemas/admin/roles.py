"""Request and response bodies for roles and permissions administration."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.schemas.accounts import StrictBody

# Lower-case and without spaces: names appear in tokens (`roles` claim) and in URLs.
RoleName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", min_length=1, max_length=100)
]
# `resource:action`, as in `users:read`; referenced by code and tokens, so never renamed.
Codename = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_-]*:[a-z][a-z0-9_.-]*$", max_length=100),
]
Description = Annotated[str, Field(max_length=1000)]
MAX_CODENAMES = 100


def _distinct(codenames: list[str]) -> list[str]:
    """The codenames without repeats, in the order first given."""
    return list(dict.fromkeys(codenames))


def _not_null(value: Any, field: str) -> Any:
    # An omitted field means "leave as is"; an explicit null would mean "remove", which a
    # required attribute cannot be.
    if value is None:
        raise ValueError(f"`{field}` cannot be null")
    return value


class RoleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    permissions: list[str]
    created_at: datetime

    @field_validator("permissions", mode="before")
    @classmethod
    def _codenames(cls, permissions: list[Any]) -> list[str]:
        return sorted(getattr(permission, "codename", permission) for permission in permissions)


class PermissionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    codename: str
    description: str | None
    created_at: datetime


class RoleCreate(StrictBody):
    name: RoleName
    description: Description | None = None
    permissions: list[Codename] = Field(default_factory=list, max_length=MAX_CODENAMES)

    _distinct_permissions = field_validator("permissions")(_distinct)


class RoleUpdate(StrictBody):
    """Rename and/or describe a role; omitted fields stay as they are."""

    name: RoleName | None = None
    description: Description | None = Field(default=None, description="null clears it.")

    @field_validator("name", mode="before")
    @classmethod
    def _name_not_null(cls, value: Any) -> Any:
        return _not_null(value, "name")


class RolePermissionsUpdate(StrictBody):
    """The complete set of the role's permissions, replacing the current one."""

    permissions: list[Codename] = Field(max_length=MAX_CODENAMES)

    _distinct_permissions = field_validator("permissions")(_distinct)


class PermissionCreate(StrictBody):
    codename: Codename
    description: Description | None = None


class PermissionUpdate(StrictBody):
    """Only the description changes: codenames are referenced by code and tokens."""

    description: Description | None = Field(default=None, description="null clears it.")
