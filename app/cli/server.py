"""`authsvc serve`: the HTTP service under uvicorn, in one process or in `--workers N`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer

from app.cli.common import load_settings
from app.config import Settings

if TYPE_CHECKING:
    import uvicorn

APP_FACTORY = "app.main:create_app"
# uvicorn's exit code for an app that could not start (a missing key, invalid settings).
STARTUP_FAILURE = 3


def serve(
    host: str | None = typer.Option(None, help="Bind address (default: AUTH_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: AUTH_PORT)."),
    workers: int | None = typer.Option(
        None,
        min=1,
        max=64,
        help="Processes serving the one port, each with its own runtime: connection pool, "
        "password-hashing threads, rate limiter (default: AUTH_WORKERS).",
    ),
) -> None:
    """Run the HTTP service with uvicorn."""
    import uvicorn

    from app.http_server import BoundedHeadersProtocol

    settings = load_settings()
    processes = workers or settings.workers
    options: dict[str, Any] = {
        "factory": True,
        # httptools with AUTH_MAX_HEADER_BYTES enforced; each worker builds its own.
        "http": BoundedHeadersProtocol,
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": settings.log_level,
        "proxy_headers": False,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }
    if processes == 1:
        uvicorn.run(APP_FACTORY, **options)
        return
    _prepare_for_workers(settings)
    _run_workers(uvicorn.Config(APP_FACTORY, workers=processes, **options))


def _prepare_for_workers(settings: Settings) -> None:
    """Do once, before the workers start, what each would otherwise do at start-up."""
    if settings.should_auto_migrate:
        from app.schema_migrations import upgrade_to_head

        # Migrations run here once; N workers migrating the same database at once would race.
        upgrade_to_head(settings.database_url)
        os.environ["AUTH_AUTO_MIGRATE"] = "false"  # the workers read their settings anew
    if not settings.redis_url:
        typer.echo(
            "warning: AUTH_REDIS_URL is not set, so each worker counts rate limits on its own "
            "(a limit of L admits up to workers x L attempts); set it to share the counts",
            err=True,
        )


def _run_workers(config: uvicorn.Config) -> None:
    """uvicorn's multi-process mode: the socket bound here, every worker (a fresh `spawn`ed
    interpreter running `create_app`) accepting on it, a dead worker replaced."""
    from app.http_server import DrainingMultiprocess

    supervisor = DrainingMultiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if supervisor.failed_to_start:
        raise typer.Exit(code=STARTUP_FAILURE)
