"""The transaction boundary every service method runs inside."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL aborts one transaction of a conflicting pair: serialization_failure (40001) and
# deadlock_detected (40P01). Run again, it usually succeeds: the other one has moved on.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
# How many times a unit of work aborted by a conflict runs again before the caller gets 503.
CONFLICT_RETRIES = 3


def is_transaction_conflict(error: BaseException) -> bool:
    """Whether the database aborted the transaction for a serialization failure or a deadlock
    (nothing was wrong with it; running it again may succeed)."""
    return (
        isinstance(error, DBAPIError)
        and getattr(error.orig, "sqlstate", None) in _CONFLICT_SQLSTATES
    )


@asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit what the block wrote if it finishes; roll all of it back if it raises."""
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


async def run_unit_of_work(session: AsyncSession, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` in a unit of work and return its result once committed.

    When the database aborts it for a serialization failure or a deadlock (on any statement
    or on the commit), everything is rolled back and all of `work`, its reads included, runs
    again, up to `CONFLICT_RETRIES` times; then the conflict is raised (a 503). So `work` must
    do nothing that may not happen twice outside the database (rate-limit counters: do those
    before or after; mail queued in the outbox is inside the database, rolled back with the
    rest), and must read the rows it changes itself: objects it was handed are expired by the
    rollback.
    """
    retries = 0
    while True:
        try:
            async with unit_of_work(session):
                return await work()
        except DBAPIError as error:
            if retries == CONFLICT_RETRIES or not is_transaction_conflict(error):
                raise
            retries += 1
            logger.info(
                "transaction conflict (%s), running the unit of work again (retry %d of %d)",
                getattr(error.orig, "sqlstate", None),
                retries,
                CONFLICT_RETRIES,
            )
        # Jitter, so that two victims of one deadlock do not meet again in the same order.
        await asyncio.sleep(random.uniform(0, 0.02 * retries))  # noqa: S311 - not a secret
