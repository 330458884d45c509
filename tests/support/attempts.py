"""Helpers for the throttling tests: clients at chosen addresses, bursts of parallel attempts,
and how many attempts the service actually evaluated (the audit trail says)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent


@asynccontextmanager
async def client_at(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` whose requests come from `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    """How many responses had each status code."""
    return dict(Counter(response.status_code for response in responses))


async def in_parallel(
    count: int, attempt: Callable[[int], Awaitable[httpx.Response]]
) -> dict[int, int]:
    """Run `attempt(0..count-1)` all at once; how many answers had each status code."""
    return statuses(await asyncio.gather(*(attempt(i) for i in range(count))))


async def count_events(
    sessions: async_sessionmaker[AsyncSession], event_type: str = "login.failed"
) -> int:
    """How many audit events of `event_type` there are: failed attempts that were evaluated."""
    async with sessions() as session:
        statement = select(func.count()).where(AuditEvent.type == event_type)
        return int((await session.execute(statement)).scalar_one())
