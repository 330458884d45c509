"""Data access for single-use action tokens (email verification, password reset)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import CursorResult

from app.models import ActionPurpose, ActionToken
from app.repositories.common.base import BaseRepository


class ActionTokenRepository(BaseRepository[ActionToken]):
    model = ActionToken

    async def get_by_hash(self, token_hash: str) -> ActionToken | None:
        return await self.get_one_by(token_hash=token_hash)

    async def use(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark a token used if it was not yet: of two concurrent uses, exactly one wins."""
        statement = (
            update(ActionToken)
            .where(ActionToken.id == token_id, ActionToken.used_at.is_(None))
            .values(used_at=now)
        )
        result: CursorResult[tuple[()]] = await self.session.execute(statement)  # type: ignore[assignment]
        return result.rowcount == 1

    async def void_for_user(self, user_id: uuid.UUID, purpose: ActionPurpose, now: datetime) -> int:
        """Spend every outstanding token of one purpose for a user, in one statement."""
        statement = (
            update(ActionToken)
            .where(
                ActionToken.user_id == user_id,
                ActionToken.purpose == purpose.value,
                ActionToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
        result: CursorResult[tuple[()]] = await self.session.execute(statement)  # type: ignore[assignment]
        return int(result.rowcount)
