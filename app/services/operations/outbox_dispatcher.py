"""The outbox's delivery side: one dispatcher per process (`authsvc serve`, `authsvc worker`).

A dispatcher claims due messages in a short transaction (`FOR UPDATE SKIP LOCKED` on
PostgreSQL: dispatchers in other processes skip them), delivers them concurrently outside any
transaction, then records the outcome in another short transaction: a delivered message is
deleted, a failed one is due again after an exponential backoff (`retry_delay`), and after
`AUTH_OUTBOX_MAX_ATTEMPTS` attempts it is given up (logged and counted).

Delivery is at least once: a process that dies after a delivery but before recording it
leaves the message claimed until its lease ends (`AUTH_OUTBOX_LEASE_SECONDS`), and then
another dispatcher delivers it again. In the normal case every message is delivered once.
Logs name a mail's recipient domain and an exception's type, never the address, the body or
the exception's text (either may quote the one-time link).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.mail import EmailSender, recipient_domain
from app.models import OutboxKind
from app.models.base import utcnow
from app.observability.metrics import OutboxEvents
from app.repositories.common.outbox_messages import (
    Backlog,
    ClaimedMessage,
    OutboxMessageRepository,
    Retry,
)
from app.security.encryption import DecryptionFailed, Encryptor
from app.services.common.outbox import Doorbell, decode_mail
from app.services.common.unit_of_work import unit_of_work

logger = logging.getLogger(__name__)

# The longest wait between two attempts, whatever the backoff has reached.
MAX_RETRY_DELAY_SECONDS = 3600.0
# On shutdown, deliveries in flight get this long to finish; the rest are handed back.
STOP_GRACE_SECONDS = 5.0
# ... and handing them back (or any other database call under way) this long.
STOP_MARGIN_SECONDS = 2.0
# Given-up messages are kept this long for inspection (and a manual retry), then deleted.
GIVEN_UP_RETENTION = timedelta(days=7)
PRUNE_EVERY_SECONDS = 3600.0
# An idle dispatcher never polls more often than this, even when a message is due now but
# cannot be claimed (another dispatcher's claim is committing).
MIN_PAUSE_SECONDS = 0.05
# The kinds this version delivers: messages of kinds it does not know (queued by a newer
# version during a rolling update) are left to the processes that do.
KINDS: tuple[str, ...] = (OutboxKind.mail.value,)


def retry_delay(
    attempts: int, base_seconds: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: `base x 2^(attempts-1)`, capped
    at an hour, times a random factor in [0.5, 1) so that messages that failed together (a
    mail server that was down) do not all come back at once."""
    delay = min(MAX_RETRY_DELAY_SECONDS, base_seconds * 2.0 ** min(attempts - 1, 32))
    return delay * (0.5 + rng() / 2)


@dataclass(frozen=True, slots=True)
class _Outcome:
    message: ClaimedMessage
    # What the logs may say about the destination (a mail's recipient domain).
    target: str
    # The exception type of a failed attempt; None when delivered.
    error: str | None = None
    # Failed in a way no retry mends (a payload no configured key decrypts).
    is_final: bool = False


class OutboxDispatcher:
    """Delivers the outbox's messages until stopped; see the module's docstring."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        encryptor: Callable[[], Encryptor],
        sender: EmailSender,
        metrics: OutboxEvents,
        doorbell: Doorbell,
        clock: Callable[[], datetime] = utcnow,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
    ) -> None:
        self._stop_grace_seconds = stop_grace_seconds
        self._session_factory = session_factory
        self._encryptor = encryptor
        self._sender = sender
        self._metrics = metrics
        self._doorbell = doorbell
        self._clock = clock
        self._base_seconds = settings.outbox_retry_base_seconds
        self._max_attempts = settings.outbox_max_attempts
        self._poll_seconds = settings.outbox_poll_interval_seconds
        self._lease = timedelta(seconds=settings.outbox_lease_seconds)
        # Half the lease: a delivery that has not finished by then is abandoned (and retried)
        # well before another dispatcher could take the message over.
        self._delivery_timeout = settings.outbox_lease_seconds / 2
        self._batch_size = settings.outbox_batch_size
        # Who holds a claim: rows are released or retried only by the dispatcher holding them.
        self.claimer = uuid.uuid4()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_prune = 0.0

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Run in the background of the current event loop (the app's lifespan)."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self.run(), name="outbox dispatcher")

    def request_stop(self) -> None:
        """Make `run()` return soon (see `stop`); safe to call from a signal handler."""
        self._stopping.set()
        self._doorbell.ring()

    async def stop(self) -> None:
        """Stop what `start()` started: deliveries in flight get `stop_grace_seconds` (5) to
        finish, then the messages still held are handed back for any dispatcher to take at
        once. Bounded: a dispatcher stuck on the database (a lock held elsewhere) is
        abandoned after `STOP_MARGIN_SECONDS` more; its claims come back after their lease."""
        self.request_stop()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=self._stop_grace_seconds + STOP_MARGIN_SECONDS)
        if not done:
            logger.warning("outbox dispatcher %s did not stop in time; abandoned", self.claimer)
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_MARGIN_SECONDS)

    async def run(self) -> None:
        """Deliver until `stop()`. Database failures are logged and retried after a poll
        interval; they never end the loop."""
        logger.info("outbox dispatcher %s started", self.claimer)
        while not self._stopping.is_set():
            try:
                claimed = await self.dispatch_once()
            except Exception as exc:
                logger.warning("outbox dispatcher: %s; trying again shortly", type(exc).__name__)
                await self._pause(self._poll_seconds)
                continue
            if claimed < self._batch_size:
                await self._idle()
        logger.info("outbox dispatcher %s stopped", self.claimer)

    # --- one round -------------------------------------------------------------------------

    async def dispatch_once(self) -> int:
        """Claim a batch of due messages, deliver them, record the outcomes; the number
        claimed (0: nothing was due)."""
        async with self._session_factory() as session, unit_of_work(session):
            claimed = await OutboxMessageRepository(session).claim(
                self.claimer,
                KINDS,
                now=self._clock(),
                lease=self._lease,
                limit=self._batch_size,
            )
        if claimed:
            outcomes, untried = await self._deliver(claimed)
            await self._record(outcomes, untried)
        return len(claimed)

    async def refresh_backlog(self) -> Backlog:
        """Look at the queue: the metrics' gauges are set from what is seen."""
        async with self._session_factory() as session, unit_of_work(session):
            repository = OutboxMessageRepository(session)
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                pruned = await repository.prune_given_up(self._clock() - GIVEN_UP_RETENTION)
                if pruned:
                    logger.info("outbox: deleted %d message(s) given up a week ago", pruned)
            backlog = await repository.backlog(KINDS)
        self._metrics.outbox_backlog(backlog.pending, backlog.oldest_created_at)
        return backlog

    async def _idle(self) -> None:
        """Wait for the doorbell, the next message's due time or the poll interval, the
        soonest; a look at the queue first."""
        pause = self._poll_seconds
        try:
            backlog = await self.refresh_backlog()
        except Exception as exc:
            logger.warning("outbox dispatcher: %s; trying again shortly", type(exc).__name__)
        else:
            if backlog.next_available_at is not None:
                due_in = (backlog.next_available_at - self._clock()).total_seconds()
                pause = min(pause, max(due_in, MIN_PAUSE_SECONDS))
        await self._pause(pause)

    async def _pause(self, seconds: float) -> None:
        if not self._stopping.is_set():
            await self._doorbell.wait(seconds)

    # --- delivery --------------------------------------------------------------------------

    async def _deliver(
        self, claimed: Sequence[ClaimedMessage]
    ) -> tuple[list[_Outcome], list[ClaimedMessage]]:
        """Attempt every message at once; on stop, give those in flight a grace period and
        return the ones that did not finish as untried."""
        tasks = [asyncio.create_task(self._attempt(message)) for message in claimed]
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            pending: set[asyncio.Future[Any]] = set(tasks)
            while pending and not self._stopping.is_set():
                _, pending = await asyncio.wait(
                    pending | {stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopping)
            if pending:
                _, pending = await asyncio.wait(pending, timeout=self._stop_grace_seconds)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            stopping.cancel()
        outcomes = [task.result() for task in tasks if not task.cancelled()]
        untried = [
            message for task, message in zip(tasks, claimed, strict=True) if task.cancelled()
        ]
        return outcomes, untried

    async def _attempt(self, message: ClaimedMessage) -> _Outcome:
        """One delivery attempt; never raises (except when cancelled)."""
        try:
            email = decode_mail(self._encryptor().decrypt(message.payload))
        except (DecryptionFailed, ValueError, KeyError, TypeError) as exc:
            return _Outcome(message, "<unreadable>", type(exc).__name__, is_final=True)
        target = f"domain {recipient_domain(email.to)!r}"
        try:
            async with asyncio.timeout(self._delivery_timeout):
                await self._sender.send(email)
        except Exception as exc:
            return _Outcome(message, target, type(exc).__name__)
        return _Outcome(message, target)

    async def _record(self, outcomes: list[_Outcome], untried: list[ClaimedMessage]) -> None:
        now = self._clock()
        delivered = [outcome for outcome in outcomes if outcome.error is None]
        failed = [outcome for outcome in outcomes if outcome.error is not None]
        given_up = [
            outcome
            for outcome in failed
            if outcome.is_final or outcome.message.attempts >= self._max_attempts
        ]
        retried = [outcome for outcome in failed if outcome not in given_up]
        delays = {
            outcome.message.id: retry_delay(outcome.message.attempts, self._base_seconds)
            for outcome in retried
        }
        async with self._session_factory() as session, unit_of_work(session):
            repository = OutboxMessageRepository(session)
            await repository.remove_delivered(outcome.message.id for outcome in delivered)
            await repository.schedule_retries(
                self.claimer,
                [
                    Retry(
                        outcome.message.id,
                        now + timedelta(seconds=delays[outcome.message.id]),
                        str(outcome.error),
                    )
                    for outcome in retried
                ],
            )
            await repository.give_up(
                self.claimer,
                [(outcome.message.id, str(outcome.error)) for outcome in given_up],
                now,
            )
            await repository.release(self.claimer, [message.id for message in untried], now)
        for outcome in delivered:
            self._metrics.outbox_delivered(outcome.message.kind)
        for outcome in retried:
            self._metrics.outbox_retried(outcome.message.kind)
            logger.warning(
                "outbox: %s to %s failed (attempt %d of %d), next try in %.0f s: %s",
                outcome.message.kind,
                outcome.target,
                outcome.message.attempts,
                self._max_attempts,
                delays[outcome.message.id],
                outcome.error,
            )
        for outcome in given_up:
            self._metrics.outbox_failed(outcome.message.kind)
            logger.error(
                "outbox: %s to %s given up after %d attempt(s): %s",
                outcome.message.kind,
                outcome.target,
                outcome.message.attempts,
                outcome.error,
            )
        if untried:
            logger.info("outbox: handed back %d message(s) on shutdown", len(untried))
