"""The outbox's queries: claims oldest first under a lease, `SKIP LOCKED` between concurrent
claimers on PostgreSQL, hand-backs and retries only by the holder, and the plan of the claim."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.repositories.common.outbox_messages import OutboxMessageRepository, Retry

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def queue(sessions: async_sessionmaker[AsyncSession], count: int) -> list[uuid.UUID]:
    """`count` messages, the first queued earliest (a second apart)."""
    async with sessions() as session:
        repository = OutboxMessageRepository(session)
        ids = [
            await repository.add_message(
                "mail", f"payload {n}".encode(), NOW + timedelta(seconds=n)
            )
            for n in range(count)
        ]
        await session.commit()
    return ids


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    claimer: uuid.UUID,
    *,
    now: datetime,
    limit: int = 10,
) -> list[uuid.UUID]:
    async with sessions() as session:
        claimed = await OutboxMessageRepository(session).claim(
            claimer, ["mail"], now=now, lease=LEASE, limit=limit
        )
        await session.commit()
    return sorted(message.id for message in claimed)  # ids sort by creation (UUIDv7)


async def test_claims_take_due_messages_oldest_first_until_their_lease_ends(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    ids = await queue(session_factory, 3)
    first, second = uuid.uuid4(), uuid.uuid4()
    later = NOW + timedelta(seconds=10)

    assert await claim(session_factory, first, now=NOW) == ids[:1]  # only one is due yet
    assert await claim(session_factory, second, now=later, limit=1) == ids[1:2]
    assert await claim(session_factory, second, now=later) == ids[2:]
    assert await claim(session_factory, second, now=NOW + LEASE - timedelta(seconds=1)) == []
    # The first claimer's lease has ended: its message is anyone's again.
    assert await claim(session_factory, second, now=NOW + LEASE + timedelta(seconds=1)) == ids[:1]


async def test_attempts_count_claims_and_a_hand_back_is_not_an_attempt(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    [message_id] = await queue(session_factory, 1)
    holder, stranger = uuid.uuid4(), uuid.uuid4()
    await claim(session_factory, holder, now=NOW)

    async with session_factory() as session:
        repository = OutboxMessageRepository(session)
        # Only the holder may hand back or reschedule it.
        await repository.release(stranger, [message_id], NOW)
        await repository.schedule_retries(stranger, [Retry(message_id, NOW, "TimeoutError")])
        await session.commit()
    assert await claim(session_factory, stranger, now=NOW + timedelta(seconds=1)) == []

    async with session_factory() as session:
        await OutboxMessageRepository(session).release(holder, [message_id], NOW)
        await session.commit()
    async with session_factory() as session:
        [again] = await OutboxMessageRepository(session).claim(
            stranger, ["mail"], now=NOW, lease=LEASE, limit=10
        )
        await session.commit()
    assert again.attempts == 1


async def test_the_backlog_counts_waiting_messages_not_given_up_ones(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    ids = await queue(session_factory, 3)
    holder = uuid.uuid4()
    await claim(session_factory, holder, now=NOW, limit=1)
    async with session_factory() as session:
        repository = OutboxMessageRepository(session)
        await repository.give_up(holder, [(ids[0], "SMTPRecipientsRefused")], NOW)
        await session.commit()
        backlog = await repository.backlog(["mail"])

    assert backlog.pending == 2
    assert backlog.oldest_created_at == NOW + timedelta(seconds=1)
    assert backlog.next_available_at == NOW + timedelta(seconds=1)


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serializes writers on one lock")


@pytest.mark.usefixtures("postgres_only")
async def test_concurrent_claimers_skip_each_others_rows_without_waiting(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    ids = await queue(session_factory, 4)
    later = NOW + timedelta(minutes=1)
    async with session_factory() as first, session_factory() as second:
        # The first claim's transaction stays open: its rows are locked, not yet marked.
        held = await OutboxMessageRepository(first).claim(
            uuid.uuid4(), ["mail"], now=later, lease=LEASE, limit=2
        )
        taken = await asyncio.wait_for(
            OutboxMessageRepository(second).claim(
                uuid.uuid4(), ["mail"], now=later, lease=LEASE, limit=10
            ),
            timeout=5,  # would wait on the locks without SKIP LOCKED
        )
        await first.commit()
        await second.commit()

    assert sorted(m.id for m in held) == ids[:2]
    assert sorted(m.id for m in taken) == ids[2:]
    assert await claim(session_factory, uuid.uuid4(), now=later) == []


@pytest.mark.usefixtures("postgres_only")
async def test_the_claim_reads_the_pending_index(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await queue(session_factory, 3)
    async with session_factory() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            await session.scalars(
                text(
                    "EXPLAIN SELECT id FROM outbox_messages WHERE given_up_at IS NULL "
                    "AND available_at <= now() AND kind IN ('mail') ORDER BY available_at "
                    "LIMIT 20 FOR UPDATE SKIP LOCKED"
                )
            )
        )
    assert "ix_outbox_messages_pending" in plan
