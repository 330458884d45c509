"""Work a use case hands off to run after the response has been sent.

Requests whose answer must not depend on what the database holds (`/auth/password/forgot`,
`/auth/verify/request`: "202 whether or not the account exists") answer first and look the
account up afterwards, so both paths cost the same and their timing tells nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

# A deferred job runs on a database session of its own: the request's is gone by then.
Job = Callable[[AsyncSession], Awaitable[None]]


class DeferredWork(Protocol):
    def run_later(self, job: Job) -> None:
        """Run `job` after the response, in its own session; its failures are logged, never
        raised to the caller (who has had the answer already)."""
