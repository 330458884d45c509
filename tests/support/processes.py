"""`authsvc` processes for tests that need real ones: several replicas on one database, a
process killed mid-work, `serve --workers N`. Each is started as an operator starts it (the
`authsvc` command, its settings in the environment), on a free port, and stopped by its pid
(a supervisor's workers by theirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The process environment with no `AUTH_` setting of the test run's own, cheap argon2
    parameters, development mode, and `settings` on top."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("AUTH_")
    }
    return environment | {
        "AUTH_ENVIRONMENT": "development",
        "AUTH_AUTO_MIGRATE": "false",
        "AUTH_ARGON2_MEMORY_COST_KIB": "1024",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_LOG_LEVEL": "warning",
        **settings,
    }


def run_authsvc(*args: str, settings: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run an `authsvc` command to completion; fails the test when it fails."""
    done = subprocess.run(
        [AUTHSVC, *args],
        env=service_environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"authsvc {' '.join(args)}: {done.stderr[-2000:]}"
    return done


@dataclass
class ServeProcess:
    """One `authsvc serve` process on `url`; its output goes to `log`."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until_ready(self, timeout: float = 60) -> None:
        """Until `/health/ready` answers 200 (database reachable and migrated)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"authsvc serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"authsvc serve was not ready in {timeout} s: {self.log.read_text()[-3000:]}"
        )

    def workers(self) -> list[int]:
        """The pids of its worker processes (`serve --workers N`): the children that run the
        app, not multiprocessing's resource tracker. None for a single process."""
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(child) for child in children if _runs_the_app(int(child))]

    def wait_until_every_worker_ready(self, count: int, timeout: float = 60) -> None:
        """Until each of `count` workers answers `/health/ready` alone (see `only_worker`):
        the supervisor answers readiness as soon as one worker serves."""
        deadline = time.monotonic() + timeout
        while len(self.workers()) < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no {count} workers: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        pending = set(self.workers())
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"workers {sorted(pending)} not ready in {timeout} s")
            for worker in sorted(pending):
                with only_worker(self, worker):
                    try:
                        if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                            pending.discard(worker)
                    except httpx.HTTPError:
                        pass
            time.sleep(0.1)

    def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `grace` seconds (idempotent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: the process (and its workers, each by its pid) dies at once, with
        whatever it was doing."""
        workers = self.workers()
        if self.process.poll() is None:
            self.process.kill()
        for worker in workers:
            with suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
        self.process.wait(timeout=15)


def _runs_the_app(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing.spawn" in command


@contextmanager
def only_worker(server: ServeProcess, worker: int) -> Iterator[None]:
    """Every other worker of `server` stopped (SIGSTOP) while the block runs, so the
    connections made in it are accepted by `worker` alone (which worker accepts is otherwise
    the kernel's choice). Keep the block short: the supervisor replaces a worker that does
    not answer its health check within 5 s."""
    others = [pid for pid in server.workers() if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def start_serve(settings: Mapping[str, str], log: Path, *args: str) -> ServeProcess:
    """`authsvc serve` on a free port of 127.0.0.1 (not waited for: see `wait_until_ready`)."""
    port = free_port()
    output = log.open("wb")
    process = subprocess.Popen(
        [AUTHSVC, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=service_environment(settings),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    output.close()
    return ServeProcess(process, f"http://127.0.0.1:{port}", log)


@contextmanager
def serve_processes(
    count: int, settings: Mapping[str, str], logs: Path
) -> Iterator[list[ServeProcess]]:
    """`count` replicas of the service on the same settings, all ready; stopped afterwards."""
    logs.mkdir(parents=True, exist_ok=True)
    replicas = [start_serve(settings, logs / f"serve-{index}.log") for index in range(count)]
    try:
        for replica in replicas:
            replica.wait_until_ready()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


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
