"""Delivery with retries, for callers that must not fail because a mail did."""

from __future__ import annotations

import asyncio
import logging

from app.mail.message import OutgoingEmail
from app.mail.senders import EmailSender

logger = logging.getLogger(__name__)


class MailDispatcher:
    """Delivers mail through a sender, retrying transient failures with exponential backoff."""

    def __init__(
        self, sender: EmailSender, *, attempts: int = 3, backoff_seconds: float = 0.5
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if backoff_seconds < 0:
            raise ValueError("backoff_seconds must not be negative")
        self._sender = sender
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds

    async def deliver(self, email: OutgoingEmail) -> bool:
        """Try up to `attempts` times, waiting backoff, 2 x backoff, ... in between.

        Returns whether the mail was handed over. Never raises, except `CancelledError`.
        Logs only the recipient's domain and the exception type: the address is personal
        data, and the body and the exception text may carry the one-time token.
        """
        domain = _recipient_domain(email.to)
        for attempt in range(1, self._attempts + 1):
            try:
                await self._sender.send(email)
            except Exception as exc:
                failure = type(exc).__name__
            else:
                return True
            if attempt < self._attempts:
                logger.warning(
                    "mail to domain %r failed (attempt %d of %d): %s",
                    domain,
                    attempt,
                    self._attempts,
                    failure,
                )
                await asyncio.sleep(self._backoff_seconds * 2 ** (attempt - 1))
        logger.error(
            "mail to domain %r not delivered after %d attempts: %s",
            domain,
            self._attempts,
            failure,
        )
        return False


def _recipient_domain(address: str) -> str:
    _, at, domain = address.rpartition("@")
    return domain if at else "<no domain>"
