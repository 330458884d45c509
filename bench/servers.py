"""Servers under test: uvicorn child processes pinned to the server CPU, always stopped."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
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
    # Run as `authsvc serve --workers N` (the service only) instead of the uvicorn command.
    workers: int | None = None


@dataclass(frozen=True, slots=True)
class RunningServer:
    name: str
    target: Target
    pid: int

    def cpu_seconds(self) -> float:
        """CPU used by the server so far (all its threads, and its worker processes)."""
        return process_cpu_seconds(self.pid) + sum(
            process_cpu_seconds(worker) for worker in self.worker_pids()
        )

    def worker_pids(self) -> list[int]:
        """The worker processes of `authsvc serve --workers N` (none for one process)."""
        return worker_pids(self.pid)


def worker_pids(pid: int) -> list[int]:
    """Children of `pid` that run the app (multiprocessing's spawn), not its helpers."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.spawn" in command and b"resource_tracker" not in command:
            workers.append(int(child))
    return workers


def serve_command(spec: ServerSpec, workers: int) -> list[str]:
    """`authsvc serve --workers N`, as a deployment runs it (its settings from `spec.env`)."""
    authsvc = str(Path(sys.executable).parent / "authsvc")
    address = ["--host", "127.0.0.1", "--port", str(spec.port)]
    return [authsvc, "serve", *address, "--workers", str(workers)]


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
    if spec.workers is None:
        command, env = uvicorn_command(spec), dict(spec.env)
    else:
        command = serve_command(spec, spec.workers)
        env = {"AUTH_LOG_LEVEL": "warning", **spec.env}
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *pinning.server_command(command, spec.cpus),
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await _wait_ready(spec.name, process, target, log_path)
            if spec.workers is not None and spec.workers > 1:
                await _wait_every_worker_ready(spec, process, target)
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


async def _wait_every_worker_ready(
    spec: ServerSpec, process: asyncio.subprocess.Process, target: Target
) -> None:
    """Probe each worker of `authsvc serve --workers N` alone: the others are stopped
    (SIGSTOP) for at most a second while a fresh connection asks `/health/ready`, so the
    worker still importing the app is the one that must answer. Shorter than the
    supervisor's 5 s health check, which would replace a stopped worker."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_SECONDS
    probe = get_request("/health/ready", target)
    pending = set()
    while loop.time() < deadline:
        workers = worker_pids(process.pid)
        if len(workers) == spec.workers:
            pending = set(workers)
            break
        await asyncio.sleep(0.2)
    while pending and loop.time() < deadline:
        for worker in sorted(pending):
            others = [pid for pid in worker_pids(process.pid) if pid != worker]
            for pid in others:
                os.kill(pid, signal.SIGSTOP)
            try:
                async with asyncio.timeout(1.0):
                    if (await fetch(target, probe)).status == 200:
                        pending.discard(worker)
            except (OSError, EOFError, TimeoutError, ValueError):
                pass
            finally:
                for pid in others:
                    os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(0.2)
    if pending:
        raise RuntimeError(f"{spec.name}: workers {sorted(pending)} not ready")


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
