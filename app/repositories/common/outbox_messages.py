"""Data access for the outbox: queue a message, claim due ones, record how delivery went.

Claims take `FOR UPDATE SKIP LOCKED` on PostgreSQL, so dispatchers in any number of processes
share one queue without waiting for each other or claiming a message twice; SQLite (one
process) ignores the clause and serializes claims on its writer lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, insert, select, update

from app.models import OutboxMessage
from app.models.base import new_id
from app.repositories.common.base import BaseRepository


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message a dispatcher holds until its lease ends; `attempts` counts this one."""

    id: uuid.UUID
    kind: str
    payload: bytes
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Backlog:
    """The messages not yet delivered nor given up: how many, the oldest one's creation time,
    and the earliest time one of the kinds asked about may be claimed."""

    pending: int
    oldest_created_at: datetime | None
    next_available_at: datetime | None


@dataclass(frozen=True, slots=True)
class Retry:
    """A failed attempt to record: when to try again, and the exception type."""

    id: uuid.UUID
    available_at: datetime
    error: str


class OutboxMessageRepository(BaseRepository[OutboxMessage]):
    model = OutboxMessage

    async def add_message(self, kind: str, payload: bytes, now: datetime) -> uuid.UUID:
        """Queue a message, due at once (one INSERT, nothing read back); returns its id."""
        message_id = new_id()
        await self.session.execute(
            insert(OutboxMessage).values(
                id=message_id,
                kind=kind,
                payload=payload,
                created_at=now,
                available_at=now,
                attempts=0,
            )
        )
        return message_id

    async def claim(
        self,
        claimer: uuid.UUID,
        kinds: Sequence[str],
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
    ) -> list[ClaimedMessage]:
        """Claim up to `limit` due messages of `kinds`, oldest due first, for `claimer` until
        `now + lease`, counting an attempt on each. Rows another transaction is claiming are
        skipped, not waited for, and a claimed row is not due again until its lease ends.

        Nothing due, nothing written: an idle dispatcher only reads, so it never queues for
        SQLite's one writer lock (nor writes anything on PostgreSQL)."""
        is_due = (
            OutboxMessage.given_up_at.is_(None),
            OutboxMessage.available_at <= now,
            OutboxMessage.kind.in_(list(kinds)),
        )
        due = (
            select(OutboxMessage.id)
            .where(*is_due)
            .order_by(OutboxMessage.available_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.execute(due)).scalars().all())
        if not ids:
            return []
        statement = (
            update(OutboxMessage)
            # Due still: SQLite has no row locks (one process claims there, but the check
            # costs nothing).
            .where(OutboxMessage.id.in_(ids), *is_due)
            .values(
                claimed_by=claimer,
                available_at=now + lease,
                attempts=OutboxMessage.attempts + 1,
            )
            .returning(
                OutboxMessage.id,
                OutboxMessage.kind,
                OutboxMessage.payload,
                OutboxMessage.attempts,
                OutboxMessage.created_at,
            )
            .execution_options(synchronize_session=False)
        )
        rows = (await self.session.execute(statement)).all()
        return [ClaimedMessage(*row) for row in rows]

    async def remove_delivered(self, ids: Iterable[uuid.UUID]) -> None:
        """Delete delivered messages, whoever holds them now (a message delivered after its
        lease ended is delivered all the same: another dispatcher need not send it again)."""
        id_list = list(ids)
        if id_list:
            await self.session.execute(
                delete(OutboxMessage)
                .where(OutboxMessage.id.in_(id_list))
                .execution_options(synchronize_session=False)
            )

    async def schedule_retries(self, claimer: uuid.UUID, retries: Iterable[Retry]) -> None:
        """Release failed messages `claimer` still holds, due again at their retry time."""
        for retry in retries:
            await self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == retry.id, OutboxMessage.claimed_by == claimer)
                .values(available_at=retry.available_at, last_error=retry.error, claimed_by=None)
                .execution_options(synchronize_session=False)
            )

    async def give_up(
        self, claimer: uuid.UUID, failures: Iterable[tuple[uuid.UUID, str]], now: datetime
    ) -> None:
        """Mark messages `claimer` still holds as given up (never claimed again), with the
        exception type of their last attempt."""
        for message_id, error in failures:
            await self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == claimer)
                .values(given_up_at=now, last_error=error, claimed_by=None)
                .execution_options(synchronize_session=False)
            )

    async def release(self, claimer: uuid.UUID, ids: Iterable[uuid.UUID], now: datetime) -> None:
        """Hand back messages `claimer` holds but did not try (it is stopping): due at once
        for any dispatcher, their claim not counted as an attempt."""
        id_list = list(ids)
        if id_list:
            await self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(id_list), OutboxMessage.claimed_by == claimer)
                .values(available_at=now, claimed_by=None, attempts=OutboxMessage.attempts - 1)
                .execution_options(synchronize_session=False)
            )

    async def backlog(self, kinds: Sequence[str]) -> Backlog:
        """Counts over the messages still to deliver, and when the next one of `kinds` is due
        (one aggregate over the pending rows)."""
        statement = select(
            func.count(),
            func.min(OutboxMessage.created_at),
            func.min(
                case(
                    (OutboxMessage.kind.in_(list(kinds)), OutboxMessage.available_at),
                    else_=None,
                )
            ),
        ).where(OutboxMessage.given_up_at.is_(None))
        pending, oldest, next_available = (await self.session.execute(statement)).one()
        return Backlog(int(pending), _aware(oldest), _aware(next_available))

    async def prune_given_up(self, before: datetime) -> int:
        """Delete messages given up before `before`; returns how many. Reads first: with
        nothing to delete, nothing is written."""
        ids = list(
            (
                await self.session.execute(
                    select(OutboxMessage.id).where(OutboxMessage.given_up_at < before)
                )
            )
            .scalars()
            .all()
        )
        if ids:
            await self.session.execute(
                delete(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .execution_options(synchronize_session=False)
            )
        return len(ids)

    async def lock_payloads_after(
        self, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, bytes]]:
        """Up to `limit` messages' ids and encrypted payloads, delivered or not, in id order
        after `after` (keyset batches), their rows locked until the transaction ends (a
        dispatcher's claim skips them meanwhile and takes them afterwards)."""
        await self._serialize_writers_on_sqlite()
        statement = select(OutboxMessage.id, OutboxMessage.payload).order_by(OutboxMessage.id)
        if after is not None:
            statement = statement.where(OutboxMessage.id > after)
        rows = await self.session.execute(statement.limit(limit).with_for_update())
        return [(row.id, row.payload) for row in rows]

    async def replace_payloads(self, payloads: Mapping[uuid.UUID, bytes]) -> None:
        """Store new encrypted payloads by message id (one statement, run for every row)."""
        if payloads:
            await self.session.execute(
                update(OutboxMessage),
                [{"id": key, "payload": value} for key, value in payloads.items()],
            )


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates may bypass the column type: SQLite can hand back its stored text. Either
    # way the caller gets an aware UTC datetime.
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
