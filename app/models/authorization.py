"""What the authorization endpoint hands out and remembers: authorization codes (known only by
their digests) and what each user agreed to share with each client (their grants)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey


class AuthorizationCode(UUIDPrimaryKey, CreatedAt, Base):
    """One authorization code: single use, short-lived, bound to the client, the redirect URI
    and the PKCE challenge of the request that earned it."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("service_clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The browser session that approved the request: the code is void once it has ended.
    browser_session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    nonce: Mapped[str | None] = mapped_column(String(512))
    # The S256 code challenge (RFC 7636): only the verifier's holder redeems the code.
    code_challenge: Mapped[str] = mapped_column(String(128))
    # The user's token version when the code was issued: a logout-all voids it.
    token_version: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    redeemed_at: Mapped[datetime | None]
    # The session the redemption opened, ended if the code ever comes back (RFC 6749 4.1.2).
    issued_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL")
    )


class ClientGrant(UUIDPrimaryKey, Timestamps, Base):
    """The scopes a user agreed to share with a third-party client: asked once, remembered
    until the user revokes it (`DELETE /users/me/grants/{client_id}`)."""

    __tablename__ = "client_grants"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("service_clients.client_id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(1000), default="", server_default="")
