"""Access tokens revoked before they expire: the service clients' own tokens, which have no
session whose end could make them inactive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UUIDPrimaryKey


class RevokedAccessToken(UUIDPrimaryKey, CreatedAt, Base):
    """One revoked token, by its `jti`, kept until the token would have expired anyway."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    # The token's `exp`: after it the token is refused anyway, and the row may go.
    expires_at: Mapped[datetime] = mapped_column(index=True)
