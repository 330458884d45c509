"""A serve process killed (`kill -9`) after it committed a verification link, while it was
mailing it: another process (`authsvc worker`) delivers that mail, exactly once, and the
link in it works. Real processes on the test database, a real SMTP server that stalls."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import ActionPurpose, ActionToken, OutboxMessage
from app.security.opaque_tokens import token_digest
from tests.mail.smtp_server import SmtpServer, extract_token, smtp_server
from tests.support.flows import PASSWORD
from tests.support.processes import AuthsvcProcesses, authsvc_processes, process_environment

__all__ = ["authsvc_processes", "smtp_server"]  # fixtures

# The processes compete for the CPU with everything else a worker runs: one group.
pytestmark = pytest.mark.xdist_group("authsvc_processes")

# Short, so the test does not wait a minute for the dead process's claim to lapse; long
# enough that the killed process is still inside its delivery when it dies.
LEASE_SECONDS = 8


async def outbox_rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def test_mail_committed_by_a_killed_serve_process_is_delivered_once_by_a_worker(
    database_url: str,
    session_factory: async_sessionmaker[AsyncSession],
    authsvc_processes: AuthsvcProcesses,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    env = process_environment(
        database_url,
        tmp_path / "keys",
        Fernet.generate_key().decode(),
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        frontend_url="https://app.example",
        outbox_lease_seconds=LEASE_SECONDS,
        outbox_poll_interval_seconds=0.2,
    )
    serve = authsvc_processes.serve("serve", env)
    await serve.wait_until_answering("/health/ready")
    smtp_server.stall()  # the serve process's delivery will hang at the recipient

    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as client:
        registered = await client.post(
            "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        asked = await client.post("/auth/verify/request", json={"email": "ada@example.com"})
        assert asked.status_code == 202
    await smtp_server.wait_for_stall(timeout=20)  # committed, claimed, being delivered
    serve.kill()

    [held] = await outbox_rows(session_factory)
    assert (held.attempts, held.given_up_at) == (1, None), serve.output()
    # The dead process's claim, until its lease ends.
    assert held.claimed_by is not None, serve.output()
    assert smtp_server.messages == []
    smtp_server.resume()

    worker = authsvc_processes.worker("worker", env)
    try:
        [message] = await smtp_server.wait_for(1, timeout=LEASE_SECONDS + 30)
    except AssertionError:
        pytest.fail(f"no mail from the worker:\n{worker.output()}")
    assert message["To"] == "ada@example.com"
    for _ in range(100):  # the worker records the delivery right after it
        if not await outbox_rows(session_factory):
            break
        await asyncio.sleep(0.05)
    assert await outbox_rows(session_factory) == [], worker.output()
    await asyncio.sleep(1)  # five more polls: nothing else goes out
    assert len(smtp_server.messages) == 1, worker.output()

    # The link mailed is the one the dead process committed, and it still works.
    async with session_factory() as session:
        link = await session.scalar(
            select(ActionToken).where(
                ActionToken.token_hash == token_digest(extract_token(message))
            )
        )
    assert link is not None
    assert (link.purpose, link.used_at) == (ActionPurpose.verify_email.value, None)

    assert worker.terminate() == 0
    log = worker.output()
    assert "Traceback" not in log, log
    assert "ada@" not in log, log
