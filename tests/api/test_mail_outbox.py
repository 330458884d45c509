"""Mail through the outbox, seen from outside: a dump of the database never shows a mailed link
in clear, and GET /metrics shows the outbox's counts."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import OutboxMessage
from tests.mail.smtp_server import SmtpServer, extract_token, smtp_server
from tests.support.flows import register

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, object]:
    return {
        "email_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "frontend_url": "https://app.example",
        "outbox_retry_base_seconds": 0.2,
        "rate_limit_enabled": False,
    }


async def waiting_messages(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def until_attempted(sessions: async_sessionmaker[AsyncSession]) -> OutboxMessage:
    """The one queued message, once a delivery attempt has failed."""
    for _ in range(200):
        rows = await waiting_messages(sessions)
        if rows and rows[0].last_error is not None:
            return rows[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no failed attempt recorded")


async def until_empty(sessions: async_sessionmaker[AsyncSession]) -> None:
    for _ in range(200):
        if not await waiting_messages(sessions):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the outbox still holds messages")


def dump(database_url: str) -> str:
    """The outbox table as a backup holds it: pg_dump on PostgreSQL, `.dump` on SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return subprocess.run(
            [
                "pg_dump",
                "--data-only",
                "--table=outbox_messages",
                f"--host={url.host}",
                f"--port={url.port or 5432}",
                f"--username={url.username}",
                str(url.database),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    with sqlite3.connect(str(url.database)) as connection:
        lines = connection.iterdump()
        return "\n".join(line for line in lines if '"outbox_messages"' in line)


async def test_a_dump_of_the_outbox_shows_no_link_no_address_and_no_subject(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    database_url: str,
) -> None:
    await register(client, "ada@example.com")
    smtp_server.refuse()  # the reset mail waits in the outbox, attempted once
    assert (
        await client.post("/auth/password/forgot", json={"email": "ada@example.com"})
    ).status_code == 202
    queued = await until_attempted(sessions)
    backup = dump(database_url).lower()  # SQLite writes hex in upper case
    async with sessions() as session:
        columns = " ".join(
            str(value)
            for row in await session.execute(text("SELECT * FROM outbox_messages"))
            for value in row
        )
    assert queued.id.hex in backup.replace("-", "")  # the dump does hold the row

    def assert_hidden(secret: str) -> None:
        encoded = secret.encode()
        # bytea and BLOBs dump as hex: a payload kept in clear would show that way.
        for form in (secret.lower(), encoded.hex()):
            assert form not in backup, secret
            assert form not in columns, secret
        assert encoded not in queued.payload, secret

    assert_hidden("ada@example.com")
    assert_hidden("Reset your password")
    smtp_server.accept()
    [message] = await smtp_server.wait_for(1, timeout=10)
    assert_hidden(extract_token(message))
    await until_empty(sessions)  # delivered, then deleted


async def test_metrics_count_the_outbox(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    await register(client, "ada@example.com")
    smtp_server.refuse()
    await client.post("/auth/password/forgot", json={"email": "ada@example.com"})
    await until_attempted(sessions)
    # Queued and aged, one attempt retried: what an alert on a stuck outbox would see.
    await asyncio.sleep(0.3)
    waiting = await scrape(client)
    assert waiting['authsvc_outbox_retries_total{kind="mail"}'] >= 1
    assert waiting["authsvc_outbox_queued"] == 1
    assert waiting["authsvc_outbox_oldest_age_seconds"] > 0

    smtp_server.accept()
    await smtp_server.wait_for(1, timeout=10)
    for _ in range(100):
        done = await scrape(client)
        if done["authsvc_outbox_queued"] == 0:
            break
        await asyncio.sleep(0.05)
    assert done['authsvc_outbox_delivered_total{kind="mail"}'] == 1
    assert done['authsvc_outbox_failed_total{kind="mail"}'] == 0
    assert done["authsvc_outbox_queued"] == 0
    assert done["authsvc_outbox_oldest_age_seconds"] == 0


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("authsvc_outbox"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
