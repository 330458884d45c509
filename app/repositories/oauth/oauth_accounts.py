"""Data access for identities linked from external OAuth/OIDC providers."""

from __future__ import annotations

import uuid
from typing import Any

from app.models import OAuthAccount, User
from app.repositories.common.base import BaseRepository


class OAuthAccountRepository(BaseRepository[OAuthAccount]):
    model = OAuthAccount

    async def get_by_provider_account(self, provider: str, account_id: str) -> OAuthAccount | None:
        return await self.get_one_by(provider=provider, account_id=account_id)

    async def get_user(self, provider: str, account_id: str) -> User | None:
        """The local user linked to `account_id` at `provider`, if any."""
        account = await self.get_by_provider_account(provider, account_id)
        if account is None:
            return None
        user: User | None = await self.session.get(User, account.user_id)
        return user

    async def add_account(
        self, user_id: uuid.UUID, provider: str, account_id: str, **values: Any
    ) -> OAuthAccount:
        return await self.create(
            user_id=user_id, provider=provider, account_id=account_id, **values
        )

    async def update_account(self, account: OAuthAccount, **values: Any) -> OAuthAccount:
        return await self.update(account, **values)

    async def list_for_user(self, user_id: uuid.UUID) -> list[OAuthAccount]:
        return await self.list_by(user_id=user_id)
