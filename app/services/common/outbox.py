"""The outbox's enqueue side: messages written in the caller's transaction, encrypted.

Queued mail carries one-time links, so the payload is encrypted under
AUTH_DATA_ENCRYPTION_KEY before it reaches the database. After a commit that queued
something, the process's dispatcher is woken at once (`Doorbell`), so delivery does not wait
for its next poll; other processes find the message when they poll.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import call_after_commit
from app.mail import OutgoingEmail
from app.models import OutboxKind
from app.models.base import utcnow
from app.repositories.common.outbox_messages import OutboxMessageRepository
from app.security.encryption import Encryptor
from app.services.common.unit_of_work import unit_of_work


class Doorbell:
    """Wakes the process's dispatcher: rung after a commit that queued a message."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a deadline, not a scope
        """Wait until rung or `timeout` seconds pass; True if rung. Either way, re-armed."""
        try:
            async with asyncio.timeout(timeout):
                await self._rung.wait()
        except TimeoutError:
            return False
        finally:
            self._rung.clear()
        return True


def encode_mail(email: OutgoingEmail) -> bytes:
    """The plaintext of a queued mail (JSON); `decode_mail` reads it back."""
    fields = {"to": email.to, "subject": email.subject, "text": email.text, "html": email.html}
    return json.dumps(fields, ensure_ascii=False).encode()


def decode_mail(plaintext: bytes) -> OutgoingEmail:
    """The mail `encode_mail` wrote; `ValueError` (or `KeyError`) if it is not one."""
    fields: dict[str, Any] = json.loads(plaintext)
    return OutgoingEmail(
        to=str(fields["to"]),
        subject=str(fields["subject"]),
        text=str(fields["text"]),
        html=str(fields["html"]),
    )


class Outbox:
    """Queues mail for the dispatchers (implements `MailOutbox`)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        encryptor: Callable[[], Encryptor],
        doorbell: Doorbell,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`encryptor` is called on first use: a process that queues nothing (most commands
        of the command line) never loads the key."""
        self._session_factory = session_factory
        self._encryptor = encryptor
        self._doorbell = doorbell
        self._clock = clock

    async def enqueue(self, session: AsyncSession, email: OutgoingEmail) -> None:
        payload = self._encryptor().encrypt(encode_mail(email))
        await OutboxMessageRepository(session).add_message(OutboxKind.mail, payload, self._clock())
        call_after_commit(session, self._doorbell.ring)

    async def enqueue_alone(self, email: OutgoingEmail) -> None:
        async with self._session_factory() as session, unit_of_work(session):
            await self.enqueue(session, email)
