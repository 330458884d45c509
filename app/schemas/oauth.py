"""Bodies about sign-in with external providers."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AuthorizationUrl(BaseModel):
    authorization_url: str


class OAuthAccountRead(BaseModel):
    """A provider identity linked to the account. Provider tokens are never stored."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    provider: str
    account_id: str
    account_email: str | None
    created_at: datetime
