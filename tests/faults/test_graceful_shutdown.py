"""SIGTERM drains: `authsvc serve`, run as the container runs it, stops accepting connections
at once, lets the requests in flight finish, then exits; requests that outlive the grace
period are cut off without leaving partial writes.

The requests are kept in flight by a real lock on the users table (PostgreSQL) or on the
SQLite file, so the test decides exactly when they may finish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.locks import users_locked
from tests.support.databases import ResetDatabase
from tests.support.flows import PASSWORD

AUTHSVC = str(Path(sys.executable).parent / "authsvc")
IN_FLIGHT = 5


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def exit_code(self, within: float) -> int:
        return self.process.wait(timeout=within)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(
    database_url: str,
    keys_dir: Path,
    grace_seconds: int,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    start_timeout: float = 30,
) -> Server:
    """`authsvc serve` on a free port, answering `/health/live`; `env` adds settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("AUTH_")
    }
    environment |= {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_AUTO_MIGRATE": "false",
        "AUTH_ENVIRONMENT": "development",
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_ARGON2_MEMORY_COST_KIB": "1024",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ISSUER": url,
        "AUTH_PUBLIC_URL": url,
        "AUTH_LOG_LEVEL": "warning",
        "AUTH_SHUTDOWN_GRACE_SECONDS": str(grace_seconds),
        **(env or {}),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [AUTHSVC, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return Server(process, url, log)
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            break
    process.kill()
    pytest.fail("authsvc serve did not start")


Launch = Callable[[int], Awaitable[Server]]


@pytest.fixture
async def launch(
    database_url: str, keys_dir: Path, tmp_path: Path, reset_database: ResetDatabase
) -> AsyncIterator[Launch]:
    """Start `authsvc serve` on this worker's database with a given grace period."""
    started: list[Server] = []

    async def launch(grace_seconds: int) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        server = await asyncio.to_thread(start_server, database_url, keys_dir, grace_seconds, log)
        started.append(server)
        return server

    yield launch
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            await asyncio.to_thread(server.process.wait)
    await reset_database()


@asynccontextmanager
async def registrations_held(
    server: Server, lock: AbstractAsyncContextManager[None], prefix: str
) -> AsyncIterator[list[asyncio.Task[httpx.Response]]]:
    """`IN_FLIGHT` registrations sent to `server` and held in flight by `lock` until the block
    ends; by then each task has its response or its transport error."""
    limits = httpx.Limits(max_connections=IN_FLIGHT + 1)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        tasks: list[asyncio.Task[httpx.Response]] = []
        try:
            async with lock:
                tasks = [
                    asyncio.create_task(
                        client.post(
                            "/auth/register",
                            json={"email": f"{prefix}{n}@example.com", "password": PASSWORD},
                        )
                    )
                    for n in range(IN_FLIGHT)
                ]
                # Long enough for every request to be read, hashed and waiting on the lock.
                await asyncio.sleep(1.0)
                assert not any(task.done() for task in tasks), "the lock did not hold them"
                yield tasks
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)


async def registered(engine: AsyncEngine, prefix: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM users WHERE email LIKE :pattern"),
            {"pattern": f"{prefix}%"},
        )
    return int(count or 0)


def refuses_connections(url: str) -> bool:
    try:
        httpx.get(f"{url}/health/live", timeout=1)
    except httpx.ConnectError:
        return True
    return False


async def test_sigterm_finishes_the_requests_in_flight_then_exits(
    launch: Launch, backend: str, engine: AsyncEngine, database_url: str
) -> None:
    server = await launch(10)
    lock = users_locked(backend, engine, database_url)
    async with registrations_held(server, lock, "drain") as pending:
        server.terminate()
        await asyncio.sleep(0.5)
        assert server.process.poll() is None, "exited with requests in flight"
        assert await asyncio.to_thread(refuses_connections, server.url)

    assert [task.result().status_code for task in pending] == [201] * IN_FLIGHT
    # uvicorn re-raises the signal once drained, as a process stopped by SIGTERM should end.
    assert await asyncio.to_thread(server.exit_code, 10) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log.read_text(), server.log.read_text()
    assert await registered(engine, "drain") == IN_FLIGHT


async def test_requests_outliving_the_grace_period_are_cut_off_without_partial_writes(
    launch: Launch, backend: str, engine: AsyncEngine, database_url: str
) -> None:
    grace = 1
    server = await launch(grace)
    lock = users_locked(backend, engine, database_url)
    async with registrations_held(server, lock, "cut") as pending:
        started = time.monotonic()
        server.terminate()
        await asyncio.to_thread(server.exit_code, grace + 10)
        stopped_after = time.monotonic() - started

    assert stopped_after < grace + 5, stopped_after
    # Cut off: the client sees an error answer or a closed connection, never a success.
    for task in pending:
        outcome = task.exception() or task.result()
        if isinstance(outcome, httpx.Response):
            assert outcome.status_code >= 500
        else:
            assert isinstance(outcome, httpx.TransportError)
    assert await registered(engine, "cut") == 0
