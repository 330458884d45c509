"""The audit trail for administrators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AuditLogDep
from app.api.permissions import AuditReader
from app.api.problem_docs import problem_responses
from app.schemas.admin.audit import AuditEventRead
from app.schemas.pagination import DEFAULT_LIMIT, Cursor, Limit, PageOut

router = APIRouter(
    prefix="/admin", tags=["admin"], responses=problem_responses(400, 401, 403, 404, 409, 422, 503)
)


@router.get("/audit-events", response_model=PageOut[AuditEventRead])
async def list_audit_events(
    actor: AuditReader,
    service: AuditLogDep,
    user_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    type: Annotated[str | None, Query(max_length=64, description="e.g. `login.failed`")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PageOut[AuditEventRead]:
    """Security events, newest first: sign-ins, sign-outs, token reuse, admin changes."""
    page = await service.list_events(
        actor, user_id=user_id, actor_id=actor_id, event_type=type, limit=limit, cursor=cursor
    )
    return PageOut(
        items=[AuditEventRead.model_validate(event) for event in page.items],
        next_cursor=page.next_cursor,
    )
