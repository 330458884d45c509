"""Request and response bodies about service clients."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.accounts import StrictBody
from app.services.admin.client_registration import (
    DEFAULT_AUTH_METHOD,
    DEFAULT_GRANT_TYPES,
    URI_MAX_LENGTH,
    URIS_MAX_COUNT,
    GrantType,
    TokenEndpointAuthMethod,
)

ClientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# RFC 6749 §3.3 scope-token: printable ASCII without space, '"' or '\'.
Scope = Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5B\x5D-\x7E]{1,100}$")]
Audience = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Checked by the service's rules (client_registration), which the command line shares; the
# length caps here only keep oversized bodies from getting that far.
RedirectUri = Annotated[str, StringConstraints(max_length=URI_MAX_LENGTH)]

GRANT_TYPES_DOC = (
    "Grants the client may use at /auth/token. `password` only with `is_first_party`; "
    "`refresh_token` only with `authorization_code` or `password`; `authorization_code` needs "
    "a redirect URI; a public client (`none`) cannot use `client_credentials`."
)
REDIRECT_URIS_DOC = (
    "Absolute URIs, matched exactly: https, http only on 127.0.0.1, [::1] or localhost, or a "
    "native app's private-use scheme (`com.example.app:/callback`); no fragment, no "
    f"`user:pass@`; at most {URIS_MAX_COUNT}, each at most {URI_MAX_LENGTH} characters."
)
AUTH_METHOD_DOC = (
    "`client_secret_basic` or `client_secret_post` (either is accepted at the token endpoint), "
    "or `none` for a public client (single-page or native app): it gets no secret. Cannot "
    "change between `none` and the others after creation."
)
FIRST_PARTY_DOC = "The operator's own application: may use the password grant."


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
    grant_types: list[GrantType] = Field(
        default_factory=lambda: list(DEFAULT_GRANT_TYPES),
        max_length=len(GrantType),
        description=GRANT_TYPES_DOC,
    )
    redirect_uris: list[RedirectUri] = Field(
        default_factory=list, max_length=URIS_MAX_COUNT, description=REDIRECT_URIS_DOC
    )
    post_logout_redirect_uris: list[RedirectUri] = Field(
        default_factory=list,
        max_length=URIS_MAX_COUNT,
        description="Where RP-initiated logout may return to; rules as `redirect_uris`.",
    )
    token_endpoint_auth_method: TokenEndpointAuthMethod = Field(
        default=DEFAULT_AUTH_METHOD, description=AUTH_METHOD_DOC
    )
    is_first_party: bool = Field(default=False, description=FIRST_PARTY_DOC)


class ClientUpdate(StrictBody):
    name: ClientName | None = None
    is_active: bool | None = Field(
        default=None, description="A disabled client gets no tokens; its tokens turn inactive."
    )
    scopes: list[Scope] | None = Field(default=None, max_length=100)
    audiences: list[Audience] | None = Field(default=None, max_length=20)
    grant_types: list[GrantType] | None = Field(
        default=None, max_length=len(GrantType), description=GRANT_TYPES_DOC
    )
    redirect_uris: list[RedirectUri] | None = Field(
        default=None, max_length=URIS_MAX_COUNT, description=REDIRECT_URIS_DOC
    )
    post_logout_redirect_uris: list[RedirectUri] | None = Field(
        default=None, max_length=URIS_MAX_COUNT
    )
    token_endpoint_auth_method: TokenEndpointAuthMethod | None = Field(
        default=None, description=AUTH_METHOD_DOC
    )
    is_first_party: bool | None = Field(default=None, description=FIRST_PARTY_DOC)


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: str
    name: str
    scopes: list[str]
    audiences: list[str]
    grant_types: list[GrantType]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    token_endpoint_auth_method: TokenEndpointAuthMethod
    is_first_party: bool
    is_active: bool
    created_at: datetime


class ClientCreated(ClientRead):
    """A new client with its secret: the only response that ever carries it. A public client
    (`token_endpoint_auth_method` `none`) has none, and the field is left out."""

    client_secret: str | None = None
