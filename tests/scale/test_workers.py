"""`authsvc serve --workers N`: N processes on one port, each with its own runtime, keep
every promise one process makes: the header bound in each worker, and on SIGTERM new
connections refused at once while every worker finishes its requests in flight.

Which worker accepts a connection is the kernel's choice; the tests make it theirs by
stopping (SIGSTOP) every other worker while they connect (`only_worker`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.locks import users_locked
from tests.faults.server_admin import wait_for_lock_waiters
from tests.support.databases import ResetDatabase
from tests.support.flows import PASSWORD, bearer, register_and_sign_in
from tests.support.processes import ServeProcess, only_worker, start_serve

# Process tests: each starts interpreters of its own; together on one xdist worker they do
# not fight each other for the CPU.
pytestmark = pytest.mark.xdist_group("serve-processes")

WORKERS = 2
HELD_PER_WORKER = 3
GRACE_SECONDS = 10


def serve_workers(settings: Mapping[str, str], log: Path) -> ServeProcess:
    """`authsvc serve --workers 2`, once every worker serves."""
    server = start_serve(settings, log, "--workers", str(WORKERS))
    try:
        server.wait_until_ready()
        server.wait_until_every_worker_ready(WORKERS)
    except BaseException:
        server.kill()
        raise
    return server


@pytest.fixture
async def two_workers(
    backend: str,
    database_url: str,
    keys_dir: Path,
    tmp_path: Path,
    reset_database: ResetDatabase,
) -> AsyncIterator[ServeProcess]:
    """`authsvc serve --workers 2` on this worker's PostgreSQL, counting in Redis."""
    if backend != "postgresql":
        pytest.skip("replicas share PostgreSQL; the SQLite case has a test of its own")
    settings = {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_REDIS_URL": "redis://127.0.0.1:6379/0",
        "AUTH_RATE_LIMIT_KEY_PREFIX": f"workers-{uuid.uuid4().hex}",
        "AUTH_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    server = await asyncio.to_thread(serve_workers, settings, tmp_path / "serve.log")
    try:
        yield server
    finally:
        await asyncio.to_thread(server.kill)
        await reset_database()


async def test_every_worker_serves_and_refuses_oversized_headers(
    two_workers: ServeProcess,
) -> None:
    workers = two_workers.workers()
    assert len(workers) == WORKERS, workers
    oversized = {"X-Padding": "a" * (17 * 1024)}  # over the default 16 KiB bound

    for worker in workers:
        with only_worker(two_workers, worker):
            async with httpx.AsyncClient(base_url=two_workers.url, timeout=4) as client:
                refused = await client.get("/health/live", headers=oversized)
            async with httpx.AsyncClient(base_url=two_workers.url, timeout=4) as client:
                served = await client.get("/health/ready")
        assert refused.status_code == 431, (worker, refused.status_code)
        assert refused.headers["content-type"] == "application/problem+json"
        assert served.status_code == 200, (worker, served.text)

    # Each worker has its own runtime, yet they are one service: what one signed, any checks.
    async with httpx.AsyncClient(base_url=two_workers.url, timeout=30) as client:
        tokens = await register_and_sign_in(client, "ada@example.com")
    for worker in workers:
        with only_worker(two_workers, worker):
            async with httpx.AsyncClient(base_url=two_workers.url, timeout=4) as client:
                me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, (worker, me.text)


async def test_sigterm_refuses_new_connections_and_every_worker_drains(
    two_workers: ServeProcess, backend: str, engine: AsyncEngine, database_url: str
) -> None:
    workers = two_workers.workers()
    limits = httpx.Limits(max_connections=WORKERS * HELD_PER_WORKER + 1)
    clients = [
        httpx.AsyncClient(base_url=two_workers.url, limits=limits, timeout=30) for _ in workers
    ]
    pending: list[asyncio.Task[httpx.Response]] = []
    try:
        async with users_locked(backend, engine, database_url):
            # Registrations held by the lock, HELD_PER_WORKER in each worker.
            for number, (worker, client) in enumerate(zip(workers, clients, strict=True)):
                with only_worker(two_workers, worker):
                    pending += [
                        asyncio.create_task(
                            client.post(
                                "/auth/register",
                                json={
                                    "email": f"drain{number}-{n}@example.com",
                                    "password": PASSWORD,
                                },
                            )
                        )
                        for n in range(HELD_PER_WORKER)
                    ]
                    await wait_for_lock_waiters(database_url, len(pending))

            two_workers.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert two_workers.process.poll() is None, "exited with requests in flight"
            assert await asyncio.to_thread(_refuses_connections, two_workers.url)
            assert not any(task.done() for task in pending)
        responses = await asyncio.gather(*pending)
    finally:
        for client in clients:
            await client.aclose()

    assert [response.status_code for response in responses] == [201] * len(pending)
    exit_code = await asyncio.to_thread(two_workers.process.wait, GRACE_SECONDS)
    assert exit_code in (0, -signal.SIGTERM)
    assert not [worker for worker in workers if _running(worker)], "workers outlived the server"
    log = two_workers.log.read_text()
    assert "Traceback" not in log, log
    async with engine.connect() as connection:
        registered = await connection.scalar(
            text("SELECT count(*) FROM users WHERE email LIKE 'drain%'")
        )
    assert registered == len(pending)


async def test_workers_on_a_fresh_sqlite_file_migrate_it_once(tmp_path: Path) -> None:
    """SQLite migrates at start-up by default: the supervisor does it once, before the
    workers start, instead of N workers racing to create the same tables."""
    settings = {
        "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'authsvc.db'}",
        "AUTH_AUTO_MIGRATE": "",  # unset: the default, which migrates SQLite
        "AUTH_KEYS_DIR": str(tmp_path / "keys"),
    }
    server = await asyncio.to_thread(serve_workers, settings, tmp_path / "serve.log")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            tokens = await register_and_sign_in(client, "ada@example.com")
            me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
            assert me.status_code == 200, me.text
        server.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(server.process.wait, GRACE_SECONDS)
        assert exit_code in (0, -signal.SIGTERM)
    finally:
        await asyncio.to_thread(server.kill)
    log = server.log.read_text()
    assert "Traceback" not in log, log
    # Without Redis each worker counts rate limits on its own: the operator is told.
    assert "warning: AUTH_REDIS_URL is not set" in log


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _refuses_connections(url: str) -> bool:
    try:
        httpx.get(f"{url}/health/live", timeout=2)
    except httpx.ConnectError:
        return True
    return False
