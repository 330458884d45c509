"""The `authsvc` command line: serve, migrate, and operational helpers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal

import typer
from pydantic import ValidationError

from app.config import Settings, get_settings

# Heavy imports (uvicorn, SQLAlchemy, Alembic, cryptography) live inside the commands that use
# them, so `authsvc --help` and light commands start quickly.

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
    import uvicorn

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
    from sqlalchemy.exc import SQLAlchemyError

    from app.schema_migrations import upgrade_to_head

    settings = _settings()
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


keys_cli = typer.Typer(
    name="keys",
    help="Signing keys for access tokens: the key ring in AUTH_KEYS_DIR.",
    no_args_is_help=True,
)
cli.add_typer(keys_cli)


# Spelled out here, not imported, so the CLI starts without loading the crypto modules;
# mypy checks it against app.security.keys.Algorithm where the two meet.
KeyAlgorithm = Literal["RS256", "ES256", "EdDSA"]
ALGORITHM_OPTION = typer.Option(None, "--algorithm", help="Default: AUTH_JWT_ALGORITHM.")
# Rotation keeps the old key published this long beyond the token lifetime (clock skew).
ROTATION_MARGIN_SECONDS = 60


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _warn_if_key_is_configured(settings: Settings) -> None:
    if settings.has_configured_signing_key:
        typer.echo(
            "note: AUTH_JWT_PRIVATE_KEY(_FILE) is set; the service signs with that key, "
            "not with this key ring",
            err=True,
        )


@keys_cli.command("generate")
def keys_generate(
    algorithm: KeyAlgorithm | None = ALGORITHM_OPTION,
    force: bool = typer.Option(
        False, "--force", help="Replace an existing ring: tokens its keys signed stop verifying."
    ),
) -> None:
    """Create the key ring with one signing key and print its kid."""
    from app.security.keys import KeyConfigurationError, KeyDirectory, KeyRingExistsError

    settings = _settings()
    directory = KeyDirectory(settings.keys_dir)
    try:
        key = directory.generate(algorithm or settings.jwt_algorithm, force=force)
    except KeyRingExistsError as exc:
        typer.echo(
            f"error: {exc}; use `authsvc keys rotate` to change the signing key "
            "(or --force to start over, invalidating every token)",
            err=True,
        )
        raise typer.Exit(code=1) from exc
    except (KeyConfigurationError, OSError) as exc:
        typer.echo(f"error: cannot create the key ring in {directory.path}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"generated {key.algorithm} signing key {key.kid} in {directory.path}")
    _warn_if_key_is_configured(settings)


@keys_cli.command("rotate")
def keys_rotate(algorithm: KeyAlgorithm | None = ALGORITHM_OPTION) -> None:
    """Sign with a new key; the old one stays published until its tokens have expired."""
    from app.security.keys import KeyConfigurationError, KeyDirectory

    settings = _settings()
    directory = KeyDirectory(settings.keys_dir)
    try:
        rotation = directory.rotate(
            algorithm or settings.jwt_algorithm,
            settings.access_token_ttl_seconds + ROTATION_MARGIN_SECONDS,
        )
    except KeyConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    except OSError as exc:
        typer.echo(f"error: cannot rotate the key ring in {directory.path}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    retired = rotation.retired
    typer.echo(
        f"retired {retired.algorithm} key {retired.kid}, "
        f"published until {_utc_text(rotation.publish_until)}"
    )
    typer.echo(f"current {rotation.current.algorithm} key {rotation.current.kid}")
    _warn_if_key_is_configured(settings)


@keys_cli.command("list")
def keys_list() -> None:
    """Print every published key: kid, algorithm, and whether it signs or is retired."""
    from app.security.keys import KeyConfigurationError, KeyDirectory

    settings = _settings()
    directory = KeyDirectory(settings.keys_dir)
    try:
        ring = directory.load()
    except (KeyConfigurationError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    for key in ring.keys:
        status = "current"
        if key.publish_until is not None:
            status = f"retired until {_utc_text(key.publish_until)}"
        typer.echo(f"{key.kid}  {key.algorithm:<5}  {status}")
    _warn_if_key_is_configured(settings)


def main() -> None:
    cli()
