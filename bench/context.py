"""What the scenarios share: run settings, databases, servers and the seeded users' password."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.database import BenchDatabase, email_of
from bench.http_client import Target, fetch, form_request
from bench.servers import (
    BASELINE_APP,
    PROJECT_ROOT,
    SERVICE_APP,
    Pinning,
    RunningServer,
    ServerSpec,
    running_server,
)

# The password of every seeded user (one shared argon2id hash made with the service's settings).
BENCH_PASSWORD = "bench password: correct horse battery staple"

# Users of the shared database (me, login, flood); the scale scenario has its own databases.
MAIN_DATABASE_USERS = 20_000
TOKEN_USERS = range(1, 33)  # signed in once; their access tokens drive GET /users/me
LOGIN_USERS = range(1_001, 10_001)  # the login throughput run
FLOOD_USERS = range(10_001, 20_001)  # the login flood next to /users/me


@dataclass(frozen=True, slots=True)
class BenchConfig:
    duration: float = 10.0  # seconds of measurement window per side of a comparison
    warmup: float = 2.0  # before the first leg of each side
    settle: float = 0.5  # before later legs (servers already warm)
    rounds: int = 3  # A-B-A rounds per comparison
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432"
    database: str = "authsvc_bench"
    base_port: int = 18700
    me_connections: int = 10  # = AUTH_DB_POOL_SIZE default: no overflow connections
    login_connections: int = 8
    flood_rate: float = 200.0
    flood_login_connections: int = 8
    scale_small_rows: int = 1_000
    scale_large_rows: int = 1_000_000


@dataclass
class BenchContext:
    config: BenchConfig
    pinning: Pinning
    keys_dir: Path
    log_dir: Path
    password_hash: str
    databases: list[BenchDatabase] = field(default_factory=list)
    _main_database: BenchDatabase | None = None

    def database(self, suffix: str = "") -> BenchDatabase:
        database = BenchDatabase(self.config.postgres_url, self.config.database + suffix)
        if database not in self.databases:
            self.databases.append(database)
        return database

    async def prepare(self, database: BenchDatabase, users: int) -> float:
        """Fresh database at the newest schema with users 1..`users`; seconds spent seeding."""
        await database.recreate()
        await database.migrate()
        seconds = await database.seed_users(1, users, self.password_hash)
        await database.settle()
        return seconds

    async def main_database(self) -> BenchDatabase:
        """The database of the me, login and flood scenarios, prepared on first use."""
        if self._main_database is None:
            database = self.database()
            await self.prepare(database, MAIN_DATABASE_USERS)
            self._main_database = database
        return self._main_database

    def port(self, offset: int) -> int:
        return self.config.base_port + offset

    def service_env(self, database: BenchDatabase) -> dict[str, str]:
        return {
            "AUTH_DATABASE_URL": database.sqlalchemy_url,
            "AUTH_AUTO_MIGRATE": "true",
            "AUTH_KEYS_DIR": str(self.keys_dir),
            "AUTH_ENVIRONMENT": "development",
        }

    def service(
        self,
        database: BenchDatabase,
        *,
        port_offset: int = 0,
        name: str = "service",
        env: Mapping[str, str] | None = None,
        cpus: tuple[int, ...] | None = None,
    ) -> AbstractAsyncContextManager[RunningServer]:
        """The service on `database`; `env` adds settings, `cpus` overrides the pinning."""
        spec = ServerSpec(
            name,
            SERVICE_APP,
            self.port(port_offset),
            {**self.service_env(database), **(env or {})},
            cpus,
        )
        return running_server(spec, self.pinning, self.log_dir)

    def serve(
        self,
        database: BenchDatabase,
        *,
        workers: int,
        port_offset: int = 0,
        env: Mapping[str, str] | None = None,
        cpus: tuple[int, ...] | None = None,
    ) -> AbstractAsyncContextManager[RunningServer]:
        """The service as `authsvc serve --workers N` on `database`."""
        spec = ServerSpec(
            f"serve-{workers}-workers",
            SERVICE_APP,
            self.port(port_offset),
            {**self.service_env(database), **(env or {})},
            cpus,
            workers=workers,
        )
        return running_server(spec, self.pinning, self.log_dir)

    def baseline(
        self, database: BenchDatabase, *, port_offset: int = 1
    ) -> AbstractAsyncContextManager[RunningServer]:
        spec = ServerSpec(
            "baseline", BASELINE_APP, self.port(port_offset), self.service_env(database)
        )
        return running_server(spec, self.pinning, self.log_dir)

    async def raw_argon2(
        self,
        duration: float,
        warmup: float,
        *,
        env: Mapping[str, str] | None = None,
        cpus: tuple[int, ...] | None = None,
    ) -> dict[str, Any]:
        """Raw argon2id verify rate in a child process pinned like the servers (or to `cpus`),
        with the service settings `env` adds."""
        argv = [
            sys.executable,
            "-m",
            "bench.argon2_raw",
            f"--duration={duration}",
            f"--warmup={warmup}",
        ]
        process = await asyncio.create_subprocess_exec(
            *self.pinning.server_command(argv, cpus),
            cwd=PROJECT_ROOT,
            env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"bench.argon2_raw failed:\n{err.decode(errors='replace')}")
        result: dict[str, Any] = json.loads(out)
        return result


def login_request(target: Target, number: int) -> bytes:
    """Password grant for seeded user `number` (correct password)."""
    fields = {"grant_type": "password", "username": email_of(number), "password": BENCH_PASSWORD}
    return form_request("/auth/token", target, fields)


async def login_tokens(target: Target, numbers: Iterable[int], concurrency: int = 4) -> list[str]:
    """Access tokens of seeded users, one sign-in each."""
    gate = asyncio.Semaphore(concurrency)

    async def sign_in(number: int) -> str:
        async with gate:
            response = await fetch(target, login_request(target, number))
        if response.status != 200:
            raise RuntimeError(
                f"sign-in of user {number} failed: {response.status} {response.body!r}"
            )
        token: str = response.json()["access_token"]
        return token

    return list(await asyncio.gather(*(sign_in(number) for number in numbers)))
