"""Where services put mail: the outbox, in the transaction of the change that causes it."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.mail import OutgoingEmail


class MailOutbox(Protocol):
    async def enqueue(self, session: AsyncSession, email: OutgoingEmail) -> None:
        """Queue `email` in `session`'s transaction: it is delivered once that transaction
        commits, and never if it rolls back. Call it inside the use case's unit of work."""

    async def enqueue_alone(self, email: OutgoingEmail) -> None:
        """Queue `email` in a short transaction of its own, for mail that goes with no change
        (a notice about attempts that changed nothing)."""
