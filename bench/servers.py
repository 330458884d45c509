"""Servers under test: uvicorn child processes pinned to the server CPU, always stopped."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import process_cpu_seconds
from bench.http_client import Target, fetch, get_request

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVICE_APP = "app.main:create_app"
BASELINE_APP = "bench.baseline_app:create_app"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Pinning:
    """Which CPU runs the servers (and the raw argon2 process), which the load generator."""

    server_cpu: int | None
    client_cpu: int | None

    @classmethod
    def detect(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if shutil.which("taskset") and len(cpus) >= 2:
            return cls(server_cpu=cpus[0], client_cpu=cpus[1])
        return cls(server_cpu=None, client_cpu=None)

    @property
    def enabled(self) -> bool:
        return self.server_cpu is not None

    def describe(self) -> str:
        if not self.enabled:
            return "NOT pinned (needs `taskset` and 2 CPUs): server and load share all CPUs"
        return (
            f"server processes pinned to CPU {self.server_cpu} (taskset -c {self.server_cpu}), "
            f"load generator pinned to CPU {self.client_cpu}; PostgreSQL is not pinned"
        )

    @property
    def all_cpus(self) -> tuple[int, ...] | None:
        """Both CPUs: for a server whose hash threads get a core of their own."""
        if self.server_cpu is None or self.client_cpu is None:
            return None
        return (self.server_cpu, self.client_cpu)

    def server_command(self, argv: list[str], cpus: tuple[int, ...] | None = None) -> list[str]:
        """`argv` pinned to the server CPU, or to `cpus` when given."""
        if self.server_cpu is None:
            return argv
        listing = ",".join(str(cpu) for cpu in cpus) if cpus else str(self.server_cpu)
        return ["taskset", "-c", listing, *argv]

    def pin_current_process_as_client(self) -> None:
        if self.client_cpu is not None:
            os.sched_setaffinity(0, {self.client_cpu})


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    app: str  # uvicorn factory, "module:function"
    port: int
    env: Mapping[str, str]
    cpus: tuple[int, ...] | None = None  # default: the pinning's server CPU


@dataclass(frozen=True, slots=True)
class RunningServer:
    name: str
    target: Target
    pid: int

    def cpu_seconds(self) -> float:
        """CPU used by the server process so far (all its threads)."""
        return process_cpu_seconds(self.pid)


def uvicorn_command(spec: ServerSpec) -> list[str]:
    """The same uvicorn flags for every server."""
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    return [
        uvicorn,
        spec.app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(spec.port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@asynccontextmanager
async def running_server(
    spec: ServerSpec, pinning: Pinning, log_dir: Path
) -> AsyncIterator[RunningServer]:
    """Start `spec`, wait for `/health/ready`, yield it; always terminate it.

    `taskset` execs the server, so the child's pid is the server's.
    """
    log_path = _log_path(log_dir, spec.name)
    target = Target("127.0.0.1", spec.port)
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *pinning.server_command(uvicorn_command(spec), spec.cpus),
            cwd=PROJECT_ROOT,
            env={**os.environ, **spec.env},
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await _wait_ready(spec.name, process, target, log_path)
            yield RunningServer(spec.name, target, process.pid)
        finally:
            await _stop(process)


def _log_path(log_dir: Path, name: str) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"{name}.log"


def _log_tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-2000:]


async def _wait_ready(
    name: str, process: asyncio.subprocess.Process, target: Target, log_path: Path
) -> None:
    probe = get_request("/health/ready", target)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_SECONDS
    while loop.time() < deadline:
        if process.returncode is not None:
            tail = _log_tail(log_path)
            raise RuntimeError(f"{name} exited with code {process.returncode}:\n{tail}")
        try:
            if (await fetch(target, probe)).status == 200:
                return
        except (OSError, EOFError, TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_SECONDS:.0f} s; see {log_path}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
