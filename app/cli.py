"""The `authsvc` command line: serve, migrate, and operational helpers."""

from __future__ import annotations

import asyncio
import time

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings, get_settings
from app.db import create_engine
from app.schema_migrations import upgrade_to_head

cli = typer.Typer(
    name="authsvc",
    help="Authentication service: users, tokens and keys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    try:
        return get_settings()
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(code=2) from exc


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default: AUTH_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: AUTH_PORT)."),
) -> None:
    """Run the HTTP service with uvicorn."""
    settings = _settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration (`alembic upgrade head`)."""
    settings = _settings()
    try:
        upgrade_to_head(settings.database_url)
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"error: cannot migrate the database: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo("database is at the newest schema revision")


async def _database_answers(settings: Settings) -> bool:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure to connect means "not yet"
        return False
    finally:
        await engine.dispose()


@cli.command("wait-for-db")
def wait_for_db(
    timeout: float = typer.Option(60.0, min=0, help="Give up after this many seconds."),
    interval: float = typer.Option(1.0, min=0.1, help="Seconds between attempts."),
) -> None:
    """Wait until the database answers `SELECT 1`; exit 1 after the timeout."""
    settings = _settings()
    deadline = time.monotonic() + timeout
    while True:
        if asyncio.run(_database_answers(settings)):
            typer.echo("database is reachable")
            return
        if time.monotonic() >= deadline:
            typer.echo(f"error: database not reachable after {timeout:g} s", err=True)
            raise typer.Exit(code=1)
        time.sleep(interval)


def main() -> None:
    cli()
