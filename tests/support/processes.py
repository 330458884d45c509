"""`authsvc` as real processes (`serve`, `worker`), as an operator runs them: started with a
clean environment on free ports, their output in a file, stopped by their pid.

The `authsvc_processes` fixture starts them and kills whatever is still running at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import AUTHSVC


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class AuthsvcProcess:
    """One running `authsvc` command; `port` is where it answers HTTP (serve: the API,
    worker: its metrics), if it does."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """`kill -9`: no shutdown code runs."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, as a process manager stops it; the exit code once it has stopped."""
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still running {timeout}s after SIGTERM:\n{self.output()}")

    async def wait_until_answering(self, path: str, timeout: float = 60) -> None:  # noqa: ASYNC109
        """Until GET `path` answers 200; fails early if the process exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while loop.time() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(
                        f"{self.name} exited with {self.process.returncode}:\n{self.output()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(path)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        pytest.fail(f"{self.name}: {path} not 200 within {timeout}s:\n{self.output()}")


class AuthsvcProcesses:
    """Starts `authsvc` commands for one test, each with its own log in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[AuthsvcProcess] = []

    def start(
        self, name: str, *args: str, env: dict[str, str], port: int | None = None
    ) -> AuthsvcProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
        log = self.directory / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [AUTHSVC, *args],
                cwd=self.directory,  # no stray .env from the checkout
                env={**clean, **env},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started = AuthsvcProcess(name, process, log, port)
        self.started.append(started)
        return started

    def serve(self, name: str, env: dict[str, str]) -> AuthsvcProcess:
        port = free_port()
        return self.start(
            name, "serve", "--host", "127.0.0.1", "--port", str(port), env=env, port=port
        )

    def worker(self, name: str, env: dict[str, str]) -> AuthsvcProcess:
        port = free_port()
        return self.start(
            name,
            "worker",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(port),
            env=env,
            port=port,
        )

    def kill_all(self) -> None:
        for started in self.started:
            if started.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(started.pid, signal.SIGKILL)
                started.process.wait(timeout=10)


@pytest.fixture
def authsvc_processes(tmp_path: Path) -> Iterator[AuthsvcProcesses]:
    processes = AuthsvcProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.kill_all()


def process_environment(
    database_url: str, keys_dir: Path, data_key: str, **settings: object
) -> dict[str, str]:
    """Settings for `authsvc` processes on the test database: development, cheap hashes, the
    given data encryption key (every process must share it), `settings` on top."""
    values: dict[str, object] = {
        "AUTH_ENVIRONMENT": "development",
        "AUTH_DATABASE_URL": database_url,
        "AUTH_AUTO_MIGRATE": "false",  # the test database is migrated already
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_DATA_ENCRYPTION_KEY": data_key,
        "AUTH_ARGON2_MEMORY_COST_KIB": "1024",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_LOG_LEVEL": "info",
        **{f"AUTH_{name.upper()}": value for name, value in settings.items()},
    }
    return {name: str(value) for name, value in values.items()}
