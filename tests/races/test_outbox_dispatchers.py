"""Three `authsvc worker` processes on one PostgreSQL outbox: every message is delivered exactly
once, and the work is shared (`FOR UPDATE SKIP LOCKED` claims)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.mail import OutgoingEmail
from app.models import OutboxMessage
from app.security.encryption import Encryptor
from app.services.common.outbox import Doorbell, Outbox
from app.services.common.unit_of_work import unit_of_work
from tests.mail.smtp_server import SmtpServer, smtp_server
from tests.support.processes import (
    AuthsvcProcess,
    AuthsvcProcesses,
    authsvc_processes,
    process_environment,
)

__all__ = ["authsvc_processes", "smtp_server"]  # fixtures

pytestmark = pytest.mark.xdist_group("authsvc_processes")

MESSAGES = 200
WORKERS = 3


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("several dispatchers share a queue on PostgreSQL; SQLite runs one process")


async def pending(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def delivered_by(worker: AuthsvcProcess) -> float:
    async with httpx.AsyncClient(base_url=worker.url, timeout=5) as client:
        metrics = (await client.get("/metrics")).text
    [line] = [
        line
        for line in metrics.splitlines()
        if line.startswith('authsvc_outbox_delivered_total{kind="mail"}')
    ]
    return float(line.rpartition(" ")[2])


@pytest.mark.usefixtures("postgres_only")
async def test_three_workers_deliver_every_message_exactly_once(
    database_url: str,
    session_factory: async_sessionmaker[AsyncSession],
    authsvc_processes: AuthsvcProcesses,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    key = Fernet.generate_key()
    env = process_environment(
        database_url,
        tmp_path / "keys",
        key.decode(),
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        outbox_poll_interval_seconds=0.1,
        outbox_batch_size=10,
    )
    workers = [authsvc_processes.worker(f"worker-{n}", env) for n in range(WORKERS)]
    for worker in workers:
        await worker.wait_until_answering("/metrics")

    # Queued by another process (this one), as a serve process on another host would.
    outbox = Outbox(session_factory, lambda: Encryptor([key]), Doorbell())
    for first in range(0, MESSAGES, 50):
        async with session_factory() as session, unit_of_work(session):
            for n in range(first, first + 50):
                await outbox.enqueue(
                    session,
                    OutgoingEmail(
                        to=f"user{n}@example.com", subject=f"message {n}", text="t", html="h"
                    ),
                )

    await smtp_server.wait_for(MESSAGES, timeout=45)
    for _ in range(100):
        if await pending(session_factory) == 0:
            break
        await asyncio.sleep(0.05)
    assert await pending(session_factory) == 0
    await asyncio.sleep(0.5)  # five more polls by each: nothing is sent again

    subjects = Counter(str(message["Subject"]) for message in smtp_server.messages)
    assert len(smtp_server.messages) == MESSAGES
    assert subjects == Counter(f"message {n}" for n in range(MESSAGES))
    shares = [await delivered_by(worker) for worker in workers]
    assert sum(shares) == MESSAGES
    assert sum(1 for share in shares if share > 0) >= 2, shares  # they shared the queue
    for worker in workers:
        assert worker.terminate() == 0, worker.output()
        assert "Traceback" not in worker.output()
