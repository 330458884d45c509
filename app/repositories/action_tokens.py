"""Data access for single-use action tokens (email verification, password reset)."""

from __future__ import annotations

from app.models import ActionPurpose, ActionToken
from app.repositories.base import BaseRepository


class ActionTokenRepository(BaseRepository[ActionToken]):
    model = ActionToken

    async def get_by_hash(self, token_hash: str, purpose: ActionPurpose) -> ActionToken | None:
        return await self.get_one_by(token_hash=token_hash, purpose=purpose.value)
