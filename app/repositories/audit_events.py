"""Data access for the audit trail (append and read; never updated)."""

from __future__ import annotations

from app.models import AuditEvent
from app.repositories.base import BaseRepository


class AuditEventRepository(BaseRepository[AuditEvent]):
    model = AuditEvent
