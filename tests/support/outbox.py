"""Mail as the owner of an account receives it: what a use case queued, once the outbox has
handed it to the SMTP server (`tests/mail/smtp_server.py`).

A use case queues its mail in its own transaction and the outbox delivers it after the
response, so a test that counts mails waits until the outbox is empty: every mail queued so
far has then reached the server (a message is deleted only after the server took it).
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import OutboxMessage
from tests.mail.smtp_server import SmtpServer


async def until_delivered(
    sessions: async_sessionmaker[AsyncSession],
    timeout: float = 10.0,  # noqa: ASYNC109
) -> None:
    """Until the outbox holds no message (each one delivered, then deleted)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with sessions() as session:
            left = await session.scalar(select(func.count()).select_from(OutboxMessage))
        if not left:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"{left} mail(s) still in the outbox after {timeout}s")
        await asyncio.sleep(0.02)


async def delivered_mail(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer
) -> list[EmailMessage]:
    """Every mail the SMTP server received since it was last cleared, once the outbox is
    empty; the server is cleared for the next step."""
    await until_delivered(sessions)
    messages = list(smtp_server.messages)
    smtp_server.clear()
    return messages
