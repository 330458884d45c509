"""`authsvc serve` processes sharing the key ring through the database (AUTH_KEY_STORE=database):
replicas given only the database URL and the encryption key (no key file anywhere) sign and
verify each other's tokens, and a wrong encryption key stops the start with a clear error
instead of serving a 500."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_session_factory
from app.security.encryption import Encryptor
from app.services.tokens.signing_keys import DatabaseKeyStore
from tests.support.cli import AUTHSVC
from tests.support.databases import ResetDatabase
from tests.support.flows import bearer, register, sign_in

KEY = Fernet.generate_key().decode()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def launch_server(env: dict[str, str], log: Path, *, wait: bool = True) -> Server:
    """`authsvc serve` on a free port with only the AUTH_* settings in `env`; with `wait`,
    returns once it answers `/health/live`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("AUTH_")
    }
    environment |= {
        "AUTH_ISSUER": "http://localhost:8000",  # one issuer for the replicas of one service
        "AUTH_PUBLIC_URL": "http://localhost:8000",
        "AUTH_ARGON2_MEMORY_COST_KIB": "1024",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_LOG_LEVEL": "warning",
        "AUTH_AUTO_MIGRATE": "false",
        **env,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [AUTHSVC, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    server = Server(process, url, log)
    deadline = time.monotonic() + 40
    while wait and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            pytest.fail(f"authsvc serve exited:\n{server.output()}")
    if wait:
        pytest.fail(f"authsvc serve did not start:\n{server.output()}")
    return server


Launch = Callable[..., Awaitable[Server]]


@pytest.fixture
async def launch(
    database_url: str, tmp_path: Path, reset_database: ResetDatabase
) -> AsyncIterator[Launch]:
    """Start `authsvc serve` processes on this worker's database; each is stopped by its pid."""
    started: list[Server] = []

    async def launch(wait: bool = True, **env: str) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        settings = {"AUTH_DATABASE_URL": database_url, **env}
        server = await asyncio.to_thread(launch_server, settings, log, wait=wait)
        started.append(server)
        return server

    yield launch

    async def stop(server: Server) -> None:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(server.process.wait, 15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                await asyncio.to_thread(server.process.wait)

    await asyncio.gather(*(stop(server) for server in started))
    await reset_database()


@pytest.fixture
async def ring(engine: AsyncEngine) -> str:
    """A key ring in the worker's database, encrypted under KEY, as `authsvc keys generate`
    makes it; its signing kid."""
    async with create_session_factory(engine)() as session:
        key = await DatabaseKeyStore(session, Encryptor([KEY.encode()])).generate(
            "ES256", now=datetime.now(UTC)
        )
    return key.kid


# Production also refuses to start without the data encryption key (queued mail).
DATA_KEY = Fernet.generate_key().decode()


def production_replica(database_url: str, keys_dir: Path) -> dict[str, str]:
    """A production replica's settings: the database URL and the encryption key for the
    signing keys; the rest is what production asks of any replica (mail, the audit key)."""
    return {
        "AUTH_ENVIRONMENT": "production",
        "AUTH_KEY_STORE": "database",
        "AUTH_KEY_ENCRYPTION_KEY": KEY,
        "AUTH_DATA_ENCRYPTION_KEY": DATA_KEY,
        "AUTH_KEYS_DIR": str(keys_dir),  # never created: no key file anywhere
        "AUTH_EMAIL_BACKEND": "smtp",
        "AUTH_AUDIT_HMAC_KEY": "an audit key of at least thirty-two characters",
        "AUTH_ALLOW_SQLITE_IN_PRODUCTION": "true" if database_url.startswith("sqlite") else "false",
        "AUTH_KEY_CHECK_INTERVAL_SECONDS": "0.5",
    }


def kids(jwks: httpx.Response) -> set[str]:
    return {key["kid"] for key in jwks.json()["keys"]}


async def test_replicas_with_only_the_database_url_and_the_encryption_key_sign_and_verify(
    launch: Launch, database_url: str, tmp_path: Path, ring: str
) -> None:
    no_files = [tmp_path / "a-keys", tmp_path / "b-keys"]
    first, second = await asyncio.gather(
        *(launch(**production_replica(database_url, keys_dir)) for keys_dir in no_files)
    )

    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
    ):
        await register(on_first)
        from_second = (await sign_in(on_second))["access_token"]
        from_first = (await sign_in(on_first))["access_token"]
        checked_by_first = await on_first.get("/users/me", headers=bearer(from_second))
        checked_by_second = await on_second.get("/users/me", headers=bearer(from_first))
        first_jwks = await on_first.get("/.well-known/jwks.json")
        second_jwks = await on_second.get("/.well-known/jwks.json")

    assert checked_by_first.status_code == 200, checked_by_first.text
    assert checked_by_second.status_code == 200, checked_by_second.text
    signed_by = {jwt.get_unverified_header(token)["kid"] for token in (from_first, from_second)}
    assert signed_by == {ring}
    assert kids(first_jwks) == kids(second_jwks) == {ring}
    assert not any(keys_dir.exists() for keys_dir in no_files)


async def test_a_wrong_encryption_key_stops_the_start_with_a_clear_error(
    launch: Launch, database_url: str, tmp_path: Path, ring: str
) -> None:
    wrong = Fernet.generate_key().decode()
    settings = production_replica(database_url, tmp_path / "replica-keys")

    replica = await launch(wait=False, **{**settings, "AUTH_KEY_ENCRYPTION_KEY": wrong})
    exit_code = await asyncio.to_thread(replica.process.wait, 40)

    output = replica.output()
    assert exit_code != 0
    first_error = next(line for line in output.splitlines() if '"level": "critical"' in line)
    assert "cannot start: the signing keys cannot be used" in first_error
    assert f"cannot decrypt the private key of signing key {ring}" in first_error
    assert "AUTH_KEY_ENCRYPTION_KEY is not the key it was encrypted with" in first_error
    assert wrong not in output
    assert KEY not in output
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.TransportError):  # it never listened: no request got a 500
            await client.get(f"{replica.url}/health/live", timeout=1)
