"""PgBouncer, Debian's package, in front of the test PostgreSQL: a real pooler on a free port
with its own ini and userlist in a directory of the test, stopped by its pid.

.ci/run installs the package; a missing `pgbouncer` fails the test, it never skips it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.processes import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
PSQL = shutil.which("psql") or "/usr/bin/psql"
# PgBouncer refuses to run as root; as root it is told to switch to this (Debian's) user.
SERVICE_USER = "postgres"
START_TIMEOUT_SECONDS = 10.0


@dataclass
class PgBouncer:
    """A running PgBouncer: `url_for` routes a database URL through it."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def url_for(self, database_url: str) -> str:
        """`database_url` (same user and database) reached through this PgBouncer."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on PgBouncer's admin console (it speaks only the simple query
        protocol, so psql asks, not asyncpg), as one dict per row."""
        console = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "pgbouncer"]
        result = subprocess.run(
            [PSQL, *console, "--no-psqlrc", "--csv", "-c", f"SHOW {what}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        header, *rows = result.stdout.splitlines()
        names = header.split(",")
        return [dict(zip(names, row.split(","), strict=False)) for row in rows]

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM), SIGKILL if it lingers; idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ini(port: int, upstream_host: str, upstream_port: int, userlist: Path, pool_size: int) -> str:
    return f"""\
[databases]
* = host={upstream_host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {userlist}
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
"""


@contextmanager
def running_pgbouncer(directory: Path, upstream_url: str, *, pool_size: int) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode, at most `pool_size` server connections per database
    and user, in front of the server of `upstream_url`; stopped when the block ends.

    Its ini sets no `ignore_startup_parameters`: a client sending session settings at
    connect time is refused, as in a default deployment.
    """
    if not Path(PGBOUNCER).is_file():
        pytest.fail("pgbouncer is not installed (Debian package `pgbouncer`; .ci/run adds it)")
    upstream = make_url(upstream_url)
    port = free_port()
    userlist = directory / "userlist.txt"
    userlist.write_text('"postgres" ""\n')
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        _ini(port, upstream.host or "127.0.0.1", upstream.port or 5432, userlist, pool_size)
    )
    command = [PGBOUNCER, str(ini)]
    if os.geteuid() == 0:
        pwd.getpwnam(SERVICE_USER)  # fails the test clearly if Debian's user is missing
        command[1:1] = ["-u", SERVICE_USER]  # it reads its files first, then drops root
    log = directory / "pgbouncer.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    bouncer = PgBouncer(process, port, log)
    try:
        _wait_listening(bouncer)
        yield bouncer
    finally:
        bouncer.stop()


def _wait_listening(bouncer: PgBouncer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if bouncer.process.poll() is not None:
            pytest.fail(f"pgbouncer exited at start:\n{bouncer.log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", bouncer.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"pgbouncer did not listen within {START_TIMEOUT_SECONDS} s")
