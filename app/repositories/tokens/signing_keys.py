"""Data access for the signing key ring in the database (`AUTH_KEY_STORE=database`): its keys
and the one row that serializes writers and counts revisions."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.models import SigningKeyRing, StoredSigningKey
from app.models.signing_key import KEY_RING_ROW_ID
from app.repositories.common.base import BaseRepository


class SigningKeyRepository(BaseRepository[StoredSigningKey]):
    model = StoredSigningKey

    async def lock_ring(self) -> None:
        """Hold the ring's write lock until the transaction ends: concurrent writers (two
        `keys rotate`, a replica settling the ring) take turns, and each one's reads after
        this see what the previous one committed. Creates the ring's row when missing."""
        insert = postgresql.insert if self._dialect_name() == "postgresql" else sqlite.insert
        # On SQLite this write takes the database's writer lock, held to the commit.
        await self.session.execute(
            insert(SigningKeyRing)
            .values(id=KEY_RING_ROW_ID, revision=0)
            .on_conflict_do_nothing(index_elements=[SigningKeyRing.id])
        )
        await self.session.execute(
            select(SigningKeyRing.id).where(SigningKeyRing.id == KEY_RING_ROW_ID).with_for_update()
        )

    async def bump_revision(self) -> None:
        """Mark the ring changed, so every process polling `revision` reloads it. Only under
        `lock_ring`."""
        await self.session.execute(
            update(SigningKeyRing)
            .where(SigningKeyRing.id == KEY_RING_ROW_ID)
            .values(revision=SigningKeyRing.revision + 1)
        )

    async def revision(self) -> int | None:
        """The ring's revision: changes with every write (None: no ring was ever written)."""
        statement = select(SigningKeyRing.revision).where(SigningKeyRing.id == KEY_RING_ROW_ID)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def ring(self) -> list[StoredSigningKey]:
        """Every stored key, the latest to activate first."""
        statement = select(StoredSigningKey).order_by(StoredSigningKey.activates_at.desc())
        return list((await self.session.execute(statement)).scalars().all())

    def _dialect_name(self) -> str:
        return self.session.get_bind().dialect.name
