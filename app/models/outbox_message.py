"""The outbox: messages (mail now, webhooks next) written in the transaction of the change that
causes them, and delivered afterwards by a dispatcher (`app/services/operations/`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UUIDPrimaryKey


class OutboxKind(StrEnum):
    mail = "mail"


class OutboxMessage(UUIDPrimaryKey, CreatedAt, Base):
    """One message waiting for delivery, or given up. A delivered message is deleted.

    `available_at` is when a dispatcher may next claim it: its first or next try, or, while a
    dispatcher holds it (`claimed_by`), the end of that claim's lease, after which another
    dispatcher takes it (the holder crashed). `attempts` counts claims, so a message that
    crashes its dispatcher every time is given up too.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The claim query's: due messages, oldest first, given-up ones left out.
        Index(
            "ix_outbox_messages_pending",
            "available_at",
            postgresql_where=text("given_up_at IS NULL"),
            sqlite_where=text("given_up_at IS NULL"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(32))
    # Fernet ciphertext (AUTH_DATA_ENCRYPTION_KEY) of the message: mail carries one-time links.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    available_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    # The exception type of the last failed attempt, never its text (it may quote the payload).
    last_error: Mapped[str | None] = mapped_column(String(128))
    claimed_by: Mapped[uuid.UUID | None]
    given_up_at: Mapped[datetime | None]
