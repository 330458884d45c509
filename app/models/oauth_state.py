"""An external sign-in in progress: what the callback must find to finish it safely."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UUIDPrimaryKey


class OAuthState(UUIDPrimaryKey, CreatedAt, Base):
    """One authorization request. The `state` and the browser cookie are kept as digests;
    the PKCE verifier must be sent to the provider, so it is kept as is, for minutes, once."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(50))
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    # Set when a signed-in user links another provider to their account.
    link_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE")
    )
    # The sign-in session and token version that started the link: the link is void once
    # that session ends or the version moves on (logout-all, password change or reset, the
    # pre-hijacking takeover), so a saved flow outlives neither its owner's nor a thief's access.
    link_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE")
    )
    link_token_version: Mapped[int | None]
    # Set when the flow started on the hosted sign-in page: where the browser goes once signed
    # in (an authorization request, or "" for the "signed in" page). The callback then opens a
    # browser session and answers with pages instead of the token response. As long as the
    # sign-in page's `next` may be: an authorization request's `state` alone may take 2000.
    return_to: Mapped[str | None] = mapped_column(String(8000))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
