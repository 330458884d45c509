"""`authsvc migrate` and `authsvc wait-for-db`: the database's schema and its availability."""

from __future__ import annotations

import asyncio
import time

import typer

from app.cli.common import load_settings
from app.config import Settings


def migrate() -> None:
    """Upgrade the database schema to the newest migration (`alembic upgrade head`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.schema_migrations import upgrade_to_head

    settings = load_settings()
    try:
        upgrade_to_head(settings.database_url)
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"error: cannot migrate the database: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo("database is at the newest schema revision")


async def _database_answers(settings: Settings) -> bool:
    from sqlalchemy import text

    from app.db import create_engine

    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure to connect means "not yet"
        return False
    finally:
        await engine.dispose()


def wait_for_db(
    timeout: float = typer.Option(60.0, min=0, help="Give up after this many seconds."),
    interval: float = typer.Option(1.0, min=0.1, help="Seconds between attempts."),
) -> None:
    """Wait until the database answers `SELECT 1`; exit 1 after the timeout."""
    settings = load_settings()
    deadline = time.monotonic() + timeout
    while True:
        if asyncio.run(_database_answers(settings)):
            typer.echo("database is reachable")
            return
        if time.monotonic() >= deadline:
            typer.echo(f"error: database not reachable after {timeout:g} s", err=True)
            raise typer.Exit(code=1)
        time.sleep(interval)
