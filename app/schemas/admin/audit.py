"""The audit trail as the admin API shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: str
    user_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    created_at: datetime
