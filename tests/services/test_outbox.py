"""The outbox in one process: queued in the unit of work, delivered by the dispatcher to a real
SMTP server, retried with backoff, given up, handed back on stop; on both backends."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.mail import OutgoingEmail, SmtpEmailSender
from app.models import OutboxMessage, User
from app.observability.metrics import AuthMetrics
from app.repositories import UserRepository
from app.repositories.common.outbox_messages import OutboxMessageRepository
from app.security.encryption import Encryptor
from app.services.common.outbox import Doorbell, Outbox
from app.services.common.unit_of_work import unit_of_work
from app.services.operations.outbox_dispatcher import (
    MAX_RETRY_DELAY_SECONDS,
    OutboxDispatcher,
    retry_delay,
)
from tests.mail.smtp_server import SmtpServer, smtp_server, text_part
from tests.support.state import FrozenClock

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest

KEY = Fernet.generate_key()


def mail(number: int = 1, to: str = "ada@example.com") -> OutgoingEmail:
    return OutgoingEmail(
        to=to,
        subject=f"message {number}",
        text=f"https://app.example/reset?token=secret-{number}",
        html=f"<a href='https://app.example/reset?token=secret-{number}'>reset</a>",
    )


class Harness:
    """An outbox and a dispatcher over the test database, mailing `smtp_server`, on a clock
    the test moves."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.doorbell = Doorbell()
        self.metrics = AuthMetrics(clock=clock)
        self.outbox = Outbox(sessions, lambda: Encryptor([KEY]), self.doorbell, clock=clock)
        self.dispatcher = self.dispatcher_for()

    def dispatcher_for(
        self,
        key: bytes = KEY,
        stop_grace_seconds: float = 5.0,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> OutboxDispatcher:
        return OutboxDispatcher(
            settings=self.settings,
            session_factory=sessions or self.sessions,
            encryptor=lambda: Encryptor([key]),
            sender=SmtpEmailSender(self.settings),
            metrics=self.metrics,
            doorbell=self.doorbell,
            clock=self.clock,
            stop_grace_seconds=stop_grace_seconds,
        )

    async def queue(self, *emails: OutgoingEmail) -> None:
        async with self.sessions() as session, unit_of_work(session):
            for email in emails:
                await self.outbox.enqueue(session, email)

    async def rows(self) -> list[OutboxMessage]:
        async with self.sessions() as session:
            return list((await session.scalars(select(OutboxMessage))).all())

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        assert value is not None, name
        return value


@pytest.fixture
async def harness(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> AsyncIterator[Harness]:
    settings = settings.model_copy(
        update={
            "email_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "outbox_retry_base_seconds": 10.0,
            "outbox_max_attempts": 3,
            "outbox_lease_seconds": 60.0,
        }
    )
    harness = Harness(settings, session_factory, FrozenClock())
    yield harness
    await harness.dispatcher.stop()


async def test_mail_queued_in_a_committed_unit_of_work_is_delivered_once(
    harness: Harness, smtp_server: SmtpServer
) -> None:
    await harness.queue(mail(1), mail(2, to="bob@example.org"))
    assert await harness.doorbell.wait(0), "the commit wakes the dispatcher"

    assert await harness.dispatcher.dispatch_once() == 2

    received = await smtp_server.wait_for(2)
    assert sorted(m["Subject"] for m in received) == ["message 1", "message 2"]
    assert "token=secret-1" in text_part(next(m for m in received if m["To"] == "ada@example.com"))
    assert await harness.rows() == []  # delivered messages are deleted
    assert await harness.dispatcher.dispatch_once() == 0
    assert len(smtp_server.messages) == 2
    assert harness.metric("authsvc_outbox_delivered_total", kind="mail") == 2


async def test_a_rolled_back_change_sends_nothing(
    harness: Harness, smtp_server: SmtpServer
) -> None:
    async with harness.sessions() as session:
        with pytest.raises(RuntimeError):
            async with unit_of_work(session):
                await UserRepository(session).create(email="ada@example.com", hashed_password="x")
                await harness.outbox.enqueue(session, mail())
                raise RuntimeError("the use case failed after queueing its mail")
        # The same session commits something else afterwards: that rings no bell for the
        # mail rolled back before it.
        async with unit_of_work(session):
            await UserRepository(session).create(email="bob@example.org", hashed_password="x")
        users = list(await session.scalars(select(User.email)))

    assert users == ["bob@example.org"]
    assert await harness.rows() == []
    assert not await harness.doorbell.wait(0)
    assert await harness.dispatcher.dispatch_once() == 0
    assert smtp_server.messages == []


async def test_a_refused_mail_is_retried_with_backoff_then_given_up(
    harness: Harness, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    smtp_server.refuse("451 4.3.0 Try again later")
    await harness.queue(mail())
    waits = []

    for attempt in (1, 2):
        start = harness.clock()
        assert await harness.dispatcher.dispatch_once() == 1
        [row] = await harness.rows()
        assert (row.attempts, row.last_error, row.claimed_by) == (
            attempt,
            "SMTPRecipientsRefused",
            None,
        )
        waits.append((row.available_at - start).total_seconds())
        assert await harness.dispatcher.dispatch_once() == 0  # not due yet
        harness.clock.advance(seconds=waits[-1])

    # base 10 s, doubling, times a factor in [0.5, 1)
    assert 5 <= waits[0] < 10
    assert 10 <= waits[1] < 20
    assert await harness.dispatcher.dispatch_once() == 1
    [row] = await harness.rows()
    assert row.given_up_at is not None
    assert row.attempts == 3
    assert smtp_server.refusals == 3

    smtp_server.accept()
    harness.clock.advance(hours=2)
    assert await harness.dispatcher.dispatch_once() == 0  # a given-up message stays given up
    assert smtp_server.messages == []
    assert harness.metric("authsvc_outbox_retries_total", kind="mail") == 2
    assert harness.metric("authsvc_outbox_failed_total", kind="mail") == 1
    assert harness.metric("authsvc_outbox_delivered_total", kind="mail") == 0
    await harness.dispatcher.refresh_backlog()
    assert harness.metric("authsvc_outbox_queued") == 0  # given up: no longer waiting
    ours = [r for r in caplog.records if r.name.startswith("app.")]  # not the SMTP server's
    [given_up] = [r for r in ours if r.levelno >= logging.ERROR]
    assert "'example.com'" in given_up.getMessage()
    logged = " ".join(r.getMessage() for r in ours)
    assert "ada@" not in logged
    assert "secret-1" not in logged
    assert "Try again later" not in logged  # the exception's type, never its text


def test_retry_delays_double_from_the_base_with_jitter_and_stop_at_an_hour() -> None:
    for attempts in range(1, 12):
        expected = min(5 * 2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS)
        assert retry_delay(attempts, 5, rng=lambda: 0.0) == expected / 2
        assert retry_delay(attempts, 5, rng=lambda: 0.999999) == pytest.approx(expected, rel=1e-5)
    assert retry_delay(1000, 5) <= MAX_RETRY_DELAY_SECONDS


async def test_the_queue_gauges_show_waiting_messages_and_the_oldest_ones_age(
    harness: Harness, smtp_server: SmtpServer
) -> None:
    smtp_server.refuse()
    await harness.queue(mail(1))
    harness.clock.advance(seconds=30)
    await harness.queue(mail(2))
    harness.clock.advance(seconds=15)

    await harness.dispatcher.refresh_backlog()

    assert harness.metric("authsvc_outbox_queued") == 2
    assert harness.metric("authsvc_outbox_oldest_age_seconds") == pytest.approx(45, abs=1)
    harness.clock.advance(seconds=10)  # the age grows between two looks at the queue
    assert harness.metric("authsvc_outbox_oldest_age_seconds") == pytest.approx(55, abs=1)

    smtp_server.accept()
    assert await harness.dispatcher.dispatch_once() == 2
    await harness.dispatcher.refresh_backlog()
    assert harness.metric("authsvc_outbox_queued") == 0
    assert harness.metric("authsvc_outbox_oldest_age_seconds") == 0


async def test_a_crashed_dispatchers_messages_are_delivered_after_its_lease(
    harness: Harness, smtp_server: SmtpServer
) -> None:
    await harness.queue(mail())
    crashed = uuid.uuid4()
    async with harness.sessions() as session, unit_of_work(session):
        [held] = await OutboxMessageRepository(session).claim(
            crashed, ["mail"], now=harness.clock(), lease=timedelta(seconds=60), limit=10
        )

    assert await harness.dispatcher.dispatch_once() == 0  # held by the other claimer
    harness.clock.advance(seconds=61)
    assert await harness.dispatcher.dispatch_once() == 1

    await smtp_server.wait_for(1)
    assert await harness.rows() == []
    # The crashed claimer's late report changes nothing.
    async with harness.sessions() as session, unit_of_work(session):
        await OutboxMessageRepository(session).release(crashed, [held.id], harness.clock())
    assert await harness.rows() == []


async def test_stopping_hands_back_a_message_whose_delivery_hangs(
    harness: Harness, smtp_server: SmtpServer
) -> None:
    dispatcher = harness.dispatcher_for(stop_grace_seconds=0.2)
    smtp_server.stall()
    dispatcher.start()
    await harness.queue(mail())
    await smtp_server.wait_for_stall()

    await dispatcher.stop()

    [row] = await harness.rows()
    assert (row.attempts, row.claimed_by, row.given_up_at) == (0, None, None)
    assert row.available_at <= harness.clock()
    smtp_server.resume()
    assert await harness.dispatcher.dispatch_once() == 1  # another dispatcher takes it at once
    await smtp_server.wait_for(1)
    assert len(smtp_server.messages) == 1


async def test_a_running_dispatcher_delivers_as_soon_as_the_change_commits(
    harness: Harness, smtp_server: SmtpServer
) -> None:
    # A poll interval far longer than the wait: only the doorbell can explain a prompt mail.
    harness.settings = harness.settings.model_copy(update={"outbox_poll_interval_seconds": 300})
    dispatcher = harness.dispatcher_for()
    dispatcher.start()
    try:
        await asyncio.sleep(0.3)  # past its first look at the (empty) queue: idle now
        await harness.queue(mail())
        await smtp_server.wait_for(1, timeout=3)
    finally:
        await dispatcher.stop()


async def test_a_message_no_configured_key_decrypts_is_given_up_at_once(
    harness: Harness, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await harness.queue(mail())
    stranger = harness.dispatcher_for(key=Fernet.generate_key())

    assert await stranger.dispatch_once() == 1

    [row] = await harness.rows()
    assert (row.attempts, row.last_error) == (1, "DecryptionFailed")
    assert row.given_up_at is not None
    assert smtp_server.messages == []
    assert harness.metric("authsvc_outbox_failed_total", kind="mail") == 1
    assert any("<unreadable>" in r.getMessage() for r in caplog.records)


async def test_messages_of_kinds_this_version_does_not_know_are_left_alone(
    harness: Harness,
) -> None:
    async with harness.sessions() as session, unit_of_work(session):
        await OutboxMessageRepository(session).add_message("webhook", b"...", harness.clock())

    assert await harness.dispatcher.dispatch_once() == 0
    backlog = await harness.dispatcher.refresh_backlog()
    assert backlog.pending == 1
    assert backlog.next_available_at is None  # no spinning on a message it will never take


async def test_given_up_messages_are_deleted_after_a_week(
    harness: Harness, smtp_server: SmtpServer
) -> None:
    harness.settings = harness.settings.model_copy(update={"outbox_max_attempts": 1})
    dispatcher = harness.dispatcher_for()
    smtp_server.refuse("550 5.1.1 No such user")
    await harness.queue(mail())
    assert await dispatcher.dispatch_once() == 1
    assert len(await harness.rows()) == 1

    harness.clock.advance(days=8)
    await dispatcher.refresh_backlog()

    assert await harness.rows() == []


async def test_the_dispatcher_outlives_a_database_failure(
    harness: Harness, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def flaky_sessions() -> AsyncSession:
        calls.append(1)
        if len(calls) <= 2:
            raise ConnectionRefusedError("database down")
        return harness.sessions()

    caplog.set_level(logging.INFO)
    harness.settings = harness.settings.model_copy(update={"outbox_poll_interval_seconds": 0.05})
    dispatcher = harness.dispatcher_for(sessions=flaky_sessions)  # type: ignore[arg-type]
    dispatcher.start()
    try:
        await harness.queue(mail())
        await smtp_server.wait_for(1, timeout=5)
    finally:
        await dispatcher.stop()
    assert any("ConnectionRefusedError" in r.getMessage() for r in caplog.records)
