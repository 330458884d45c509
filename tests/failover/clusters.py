"""A PostgreSQL primary and a synchronous streaming standby, built for one test on free ports
from Debian's binaries (`initdb`, `pg_basebackup -R`, `pg_ctl promote`), and torn down after.

PostgreSQL refuses to run as root, so when the tests run as root the clusters run as the
`postgres` system user, in a directory that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
STANDBY_NAME = "standby1"


def _as_cluster_user() -> list[str]:
    """The command prefix that runs a PostgreSQL binary as a non-root user."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _run(*command: str, timeout: float = 60) -> str:
    done = subprocess.run(
        [*_as_cluster_user(), *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}"
        )
    return done.stdout


@dataclass
class Cluster:
    """One PostgreSQL server: its data directory, port and log."""

    data: Path
    port: int

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    def start(self) -> None:
        _run(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate` is a crash: no shutdown checkpoint)."""
        subprocess.run(
            [
                *_as_cluster_user(),
                str(BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )

    def promote(self) -> None:
        _run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote")

    def psql(self, sql: str, database: str = "postgres") -> str:
        return _run(
            str(BIN / "psql"),
            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
            "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
        )  # fmt: skip

    def is_in_recovery(self) -> bool:
        return self.psql("SELECT pg_is_in_recovery()").strip() == "t"


@dataclass
class ReplicatedPair:
    primary: Cluster
    standby: Cluster

    def database_url(self, database: str) -> str:
        """An asyncpg DSN naming both hosts, which connects to whichever accepts writes."""
        return (
            f"postgresql+asyncpg://postgres@/{database}"
            f"?host=127.0.0.1:{self.primary.port}&host=127.0.0.1:{self.standby.port}"
            "&target_session_attrs=read-write"
        )


def _configure(data: Path, port: int, socket_dir: Path, extra: str = "") -> None:
    settings = f"""
port = {port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
full_page_writes = off
shared_buffers = 32MB
{extra}
"""
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write(settings)
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "host all all 127.0.0.1/32 trust\n"
        "host replication all 127.0.0.1/32 trust\n"
    )


@contextmanager
def replicated_pair() -> Iterator[ReplicatedPair]:
    """A primary that commits only once the standby has the commit (synchronous replication:
    `synchronous_commit = on` and the standby named in `synchronous_standby_names`), both
    running; stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="authsvc-failover-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    primary = Cluster(root / "primary", free_port())
    standby = Cluster(root / "standby", free_port())
    try:
        _run(str(BIN / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-N")
        _configure(
            primary.data,
            primary.port,
            root,
            f"synchronous_standby_names = '{STANDBY_NAME}'\nsynchronous_commit = on",
        )
        primary.start()
        _run(
            str(BIN / "pg_basebackup"),
            "-d", f"host=127.0.0.1 port={primary.port} user=postgres "
            f"application_name={STANDBY_NAME}",
            "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        # pg_basebackup copied the primary's settings: once promoted, the standby has no
        # standby of its own to wait for, so it must not name one (its commits would hang).
        _configure(standby.data, standby.port, root, "synchronous_standby_names = ''")
        standby.start()
        deadline = time.monotonic() + 30
        while (
            primary.psql(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
            ).strip()
            != "1"
        ):
            if time.monotonic() > deadline:
                raise AssertionError("the standby did not become synchronous")
            time.sleep(0.2)
        yield ReplicatedPair(primary, standby)
    finally:
        for cluster in (standby, primary):
            if cluster.data.exists():
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
