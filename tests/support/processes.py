"""`authsvc` processes for tests that need real ones: several replicas on one database, a
process killed mid-work. Each is started as an operator starts it (the `authsvc` command, its
settings in the environment), on a free port, and stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

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

    def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `grace` seconds (idempotent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with whatever it was doing."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=15)


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
