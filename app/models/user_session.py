"""Sign-in sessions (refresh-token families, and the browser sessions of the hosted pages) and
the refresh tokens issued within them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UUIDPrimaryKey, utcnow


class UserSession(UUIDPrimaryKey, CreatedAt, Base):
    """One sign-in: every refresh token rotated from it belongs to this family.

    A browser session (a sign-in on the hosted pages) is a session too, so the session list and
    logout-all cover it: it has no client and no refresh tokens, only the digest of the
    secret in the browser's cookie. Sessions opened by redeeming an authorization code name
    the browser session that approved it, and end with it (RP-initiated logout).
    """

    __tablename__ = "sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str | None] = mapped_column(String(64))
    # The scope granted at sign-in, narrowed at each refresh to what the user may still have:
    # the tokens refreshed from this session carry it.
    scope: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(45))
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the user last proved a credential in this session (password, provider sign-in):
    # the `auth_time` of its access tokens. A refresh keeps it; only a new sign-in renews it.
    authenticated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # How the user proved who they are (RFC 8176 `amr` values, space-separated: "pwd",
    # "pwd otp", "fed otp", ...) and the assurance level that gives (`acr`: "aal1", "aal2").
    # Set at sign-in; a refresh keeps both, so it can never raise them.
    amr: Mapped[str] = mapped_column(String(64), default="", server_default="")
    acr: Mapped[str] = mapped_column(String(16), default="aal1", server_default="aal1")
    # Absolute lifetime; the idle lifetime is measured from last_used_at.
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(64))
    browser_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    browser_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), index=True
    )


class RefreshToken(UUIDPrimaryKey, CreatedAt, Base):
    """A refresh token, known only by its SHA-256 digest; spent on first use."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    spent_at: Mapped[datetime | None]
