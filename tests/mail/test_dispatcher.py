from __future__ import annotations

import asyncio
import logging

import pytest

from app.mail import MailDispatcher, OutgoingEmail

TOKEN = "tok3n-SECRET-value"
LINK = f"https://app.example.com/verify?token={TOKEN}"
EMAIL = OutgoingEmail(
    to="alice@example.org",
    subject="Verify your email address",
    text=f"Open {LINK}",
    html=f'<a href="{LINK}">Verify</a>',
)


class FlakySender:
    """Fails `failures` times (with the link in the error, as a careless library might)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[float] = []

    async def send(self, email: OutgoingEmail) -> None:
        self.calls.append(asyncio.get_running_loop().time())
        if len(self.calls) <= self.failures:
            raise ConnectionError(f"could not send {email.text}")


async def test_deliver_retries_until_the_sender_succeeds() -> None:
    sender = FlakySender(failures=2)

    delivered = await MailDispatcher(sender, attempts=3, backoff_seconds=0).deliver(EMAIL)

    assert delivered is True
    assert len(sender.calls) == 3


async def test_deliver_returns_false_after_the_last_attempt_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = FlakySender(failures=10)

    with caplog.at_level(logging.WARNING, logger="app.mail"):
        delivered = await MailDispatcher(sender, attempts=4, backoff_seconds=0).deliver(EMAIL)

    assert delivered is False
    assert len(sender.calls) == 4
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "example.org" in error.getMessage()
    assert "ConnectionError" in error.getMessage()


async def test_deliver_never_logs_the_link_the_token_or_the_local_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        await MailDispatcher(FlakySender(failures=10), backoff_seconds=0).deliver(EMAIL)

    assert caplog.records
    assert TOKEN not in caplog.text
    assert "alice" not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


async def test_deliver_backs_off_exponentially_between_attempts() -> None:
    sender = FlakySender(failures=2)

    await MailDispatcher(sender, attempts=3, backoff_seconds=0.05).deliver(EMAIL)

    first_wait = sender.calls[1] - sender.calls[0]
    second_wait = sender.calls[2] - sender.calls[1]
    assert first_wait >= 0.045
    assert second_wait >= 0.095


async def test_deliver_lets_cancellation_through() -> None:
    started = asyncio.Event()

    class HangingSender:
        async def send(self, email: OutgoingEmail) -> None:
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(MailDispatcher(HangingSender()).deliver(EMAIL))
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("attempts", "backoff_seconds", "problem"),
    [(0, 0.5, "attempts"), (1, -1.0, "backoff_seconds")],
)
def test_dispatcher_rejects_nonsensical_retry_settings(
    attempts: int, backoff_seconds: float, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        MailDispatcher(FlakySender(0), attempts=attempts, backoff_seconds=backoff_seconds)
