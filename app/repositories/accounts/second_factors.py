"""Data access for a user's second factors: the TOTP authenticator and the recovery codes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import delete, func, select, update

from app.models import RecoveryCode, TotpFactor
from app.repositories.common.base import BaseRepository


class TotpFactorRepository(BaseRepository[TotpFactor]):
    model = TotpFactor

    async def get_for_user(self, user_id: uuid.UUID) -> TotpFactor | None:
        return await self.get_one_by(user_id=user_id)

    async def get_for_update_for_user(self, user_id: uuid.UUID) -> TotpFactor | None:
        """The user's factor, its row locked until the transaction ends: two codes checked at
        once are checked one after the other, so one code (one time step) is accepted once."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(TotpFactor)
            .where(TotpFactor.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalars().first()

    async def delete_for_user(self, user_id: uuid.UUID) -> bool:
        """Remove the user's factor, pending or confirmed; True when there was one."""
        statement = delete(TotpFactor).where(TotpFactor.user_id == user_id)
        return bool(await self._returning_ids(statement))

    async def lock_secrets_after(
        self, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, str]]:
        """Up to `limit` factors' ids and encrypted secrets, in id order after `after` (keyset
        batches), their rows locked until the transaction ends: a code checked meanwhile
        waits, and never sees a secret half replaced."""
        await self._serialize_writers_on_sqlite()
        statement = select(TotpFactor.id, TotpFactor.encrypted_secret).order_by(TotpFactor.id)
        if after is not None:
            statement = statement.where(TotpFactor.id > after)
        rows = await self.session.execute(statement.limit(limit).with_for_update())
        return [(row.id, row.encrypted_secret) for row in rows]

    async def replace_secrets(self, secrets: Mapping[uuid.UUID, str]) -> None:
        """Store new encrypted secrets by factor id (one statement, run for every row)."""
        if secrets:
            await self.session.execute(
                update(TotpFactor),
                [{"id": key, "encrypted_secret": value} for key, value in secrets.items()],
            )


class RecoveryCodeRepository(BaseRepository[RecoveryCode]):
    model = RecoveryCode

    async def replace_for_user(
        self, user_id: uuid.UUID, digests: Iterable[str], now: datetime
    ) -> None:
        """Void the user's codes, used or not, and store `digests` as the new set."""
        await self.delete_for_user(user_id)
        await self.add_all(
            RecoveryCode(user_id=user_id, code_hash=digest, created_at=now) for digest in digests
        )

    async def delete_for_user(self, user_id: uuid.UUID) -> int:
        statement = delete(RecoveryCode).where(RecoveryCode.user_id == user_id)
        return len(await self._returning_ids(statement))

    async def spend(self, user_id: uuid.UUID, digest: str, now: datetime) -> bool:
        """Mark the user's unused code with `digest` used; False if there is none.

        One conditional UPDATE: of two concurrent uses of one code, exactly one matches.
        """
        statement = update(RecoveryCode).where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == digest,
            RecoveryCode.used_at.is_(None),
        )
        return bool(await self._returning_ids(statement.values(used_at=now)))

    async def count_unused(self, user_id: uuid.UUID) -> int:
        statement = select(func.count()).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
        return int((await self.session.execute(statement)).scalar_one())
