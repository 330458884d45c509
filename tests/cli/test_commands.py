"""The `authsvc` command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.cli import run_cli


def test_migrate_creates_the_schema_of_a_new_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "authsvc.db"

    result = run_cli("migrate", env={"AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{database}"})

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"users", "sessions", "alembic_version"} <= tables


def test_migrate_reports_an_unreachable_database_with_exit_code_1() -> None:
    result = run_cli(
        "migrate", env={"AUTH_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    )

    assert result.returncode == 1
    assert "cannot migrate the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_wait_for_db_gives_up_on_an_unreachable_database() -> None:
    result = run_cli(
        "wait-for-db",
        "--timeout",
        "1",
        "--interval",
        "0.2",
        env={"AUTH_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none"},
    )

    assert result.returncode == 1
    assert "not reachable" in result.stderr


def test_wait_for_db_returns_when_the_database_answers(tmp_path: Path) -> None:
    result = run_cli(
        "wait-for-db", env={"AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"}
    )

    assert result.returncode == 0, result.stderr


def test_unsafe_production_configuration_is_a_clear_error_not_a_traceback() -> None:
    result = run_cli("migrate", env={"AUTH_ENVIRONMENT": "production"})

    assert result.returncode == 2
    assert "refusing to start in production" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    for command in ("serve", "migrate", "wait-for-db"):
        assert command in result.stdout
