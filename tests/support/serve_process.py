"""`authsvc serve` as a real process tree, as a container runs it: started on a free port in
a process group of its own, its worker processes found by pid, everything stopped by pid (or
by that group's id) at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.pgbouncer import free_port

AUTHSVC = str(Path(sys.executable).parent / "authsvc")
# Each worker is a fresh interpreter that imports the whole app: slow on a busy 2-core box.
START_TIMEOUT_SECONDS = 60.0
STARTED_MARKER = b"Application startup complete"


@dataclass
class ServeProcess:
    """A running `authsvc serve`: its supervisor (or only) process and its log."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def workers(self) -> list[int]:
        """The pids of the worker processes (`--workers N`): the supervisor's children that
        run the app, not multiprocessing's resource tracker."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children if _is_worker(int(child))]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def exit_code(self, within: float) -> int:
        return self.process.wait(timeout=within)

    def kill(self) -> None:
        """SIGKILL the whole process group this test started (idempotent)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return b"multiprocessing.spawn" in command


def serve_environment(database_url: str, keys_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its AUTH_ settings, plus a test service's."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("AUTH_")
    }
    return environment | {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_ENVIRONMENT": "development",
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_ARGON2_MEMORY_COST_KIB": "1024",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_LOG_LEVEL": "info",  # the workers' start-up lines say when they serve
        **settings,
    }


def start_serve(
    environment: Mapping[str, str], log: Path, *, workers: int = 1, args: tuple[str, ...] = ()
) -> ServeProcess:
    """`authsvc serve --workers N` on a free port; returns once every worker has started and
    the service answers `/health/live`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [AUTHSVC, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), *args]
    env = {"AUTH_ISSUER": url, "AUTH_PUBLIC_URL": url, **environment}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ServeProcess(process, url, log)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"authsvc serve exited with {process.returncode}:\n{server.log_text()}")
        if log.read_bytes().count(STARTED_MARKER) >= workers and _answers(url):
            return server
        time.sleep(0.2)
    server.kill()
    pytest.fail(f"authsvc serve did not start in {START_TIMEOUT_SECONDS} s:\n{server.log_text()}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/live", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def only_worker_running(server: ServeProcess, worker: int) -> Iterator[None]:
    """Every other worker stopped (SIGSTOP) while the block runs, so connections made in it
    are accepted by `worker` alone. Keep the block short: the supervisor replaces a worker
    that does not answer its health check within 5 s."""
    others = [pid for pid in server.workers() if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)
