"""`authsvc worker`, run as an operator runs it: it delivers what is queued (a SQLite file it
migrates itself), stops on SIGTERM or SIGINT, and refuses clearly what it cannot work with."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_session_factory
from app.mail import OutgoingEmail
from app.security.encryption import Encryptor
from app.services.common.outbox import Doorbell, Outbox
from app.services.common.unit_of_work import unit_of_work
from tests.mail.smtp_server import SmtpServer, smtp_server
from tests.support.cli import run_cli
from tests.support.databases import make_settings
from tests.support.processes import AuthsvcProcesses, authsvc_processes, process_environment

__all__ = ["authsvc_processes", "smtp_server"]  # fixtures


def test_help_lists_the_worker() -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    assert "worker" in result.stdout


@pytest.mark.xdist_group("authsvc_processes")
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
async def test_a_worker_migrates_a_new_sqlite_file_delivers_and_stops_on_a_signal(
    authsvc_processes: AuthsvcProcesses,
    smtp_server: SmtpServer,
    tmp_path: Path,
    stop_signal: signal.Signals,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
    key = Fernet.generate_key()
    env = process_environment(
        database_url,
        tmp_path / "keys",
        key.decode(),
        auto_migrate="true",
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        outbox_poll_interval_seconds=0.1,
    )
    worker = authsvc_processes.worker("worker", env)
    await worker.wait_until_answering("/metrics")

    engine = create_engine(make_settings(database_url))
    try:
        sessions: async_sessionmaker[AsyncSession] = create_session_factory(engine)
        outbox = Outbox(sessions, lambda: Encryptor([key]), Doorbell())
        async with sessions() as session, unit_of_work(session):
            await outbox.enqueue(
                session, OutgoingEmail(to="ada@example.com", subject="hello", text="t", html="h")
            )
        [message] = await smtp_server.wait_for(1, timeout=10)
    finally:
        await engine.dispose()
    assert message["Subject"] == "hello"

    worker.process.send_signal(stop_signal)
    assert await asyncio.to_thread(worker.process.wait, 20) == 0
    assert "outbox dispatcher" in worker.output()
    assert "stopped" in worker.output()


def test_a_worker_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    sqlite3.connect(database).close()

    result = run_cli(
        "worker",
        env={
            "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "AUTH_AUTO_MIGRATE": "false",
            "AUTH_KEYS_DIR": str(tmp_path / "keys"),
        },
    )

    assert result.returncode == 1
    assert "run `authsvc migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_in_production_needs_the_data_encryption_key() -> None:
    result = run_cli(
        "worker",
        env={
            "AUTH_ENVIRONMENT": "production",
            "AUTH_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none",
            "AUTH_EMAIL_BACKEND": "smtp",
        },
    )

    assert result.returncode == 2
    assert "AUTH_DATA_ENCRYPTION_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_refuses_contradictory_mail_settings(tmp_path: Path) -> None:
    result = run_cli(
        "worker",
        env={
            "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
            "AUTH_KEYS_DIR": str(tmp_path / "keys"),
            "AUTH_EMAIL_BACKEND": "smtp",
            "AUTH_SMTP_STARTTLS": "true",
            "AUTH_SMTP_USE_TLS": "true",
        },
    )

    assert result.returncode == 1
    assert "mutually exclusive" in result.stderr
    assert "Traceback" not in result.stderr
