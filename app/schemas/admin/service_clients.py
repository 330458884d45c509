"""Request and response bodies about service clients."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.accounts import StrictBody

ClientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# RFC 6749 §3.3 scope-token: printable ASCII without space, '"' or '\'.
Scope = Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5B\x5D-\x7E]{1,100}$")]
Audience = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ClientCreate(StrictBody):
    name: ClientName
    scopes: list[Scope] = Field(
        default_factory=list,
        max_length=100,
        description="Permission codenames, or `introspect` to call the introspection endpoint.",
    )
    audiences: list[Audience] = Field(
        default_factory=list, max_length=20, description="Services its tokens are meant for."
    )


class ClientUpdate(StrictBody):
    name: ClientName | None = None
    is_active: bool | None = Field(
        default=None, description="A disabled client gets no tokens; its tokens turn inactive."
    )
    scopes: list[Scope] | None = Field(default=None, max_length=100)
    audiences: list[Audience] | None = Field(default=None, max_length=20)


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: str
    name: str
    scopes: list[str]
    audiences: list[str]
    is_active: bool
    created_at: datetime


class ClientCreated(ClientRead):
    """A new client with its secret: the only response that ever carries it."""

    client_secret: str
