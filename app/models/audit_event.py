"""The append-only security audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UUIDPrimaryKey


class AuditEvent(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_id_id", "user_id", "id"),
        Index("ix_audit_events_type_id", "type", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
    )

    type: Mapped[str] = mapped_column(String(64))
    # No foreign keys: the trail outlives the users and actors it names.
    user_id: Mapped[uuid.UUID | None]
    actor_id: Mapped[uuid.UUID | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
