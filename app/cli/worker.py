"""`authsvc worker`: delivers the outbox (mail), serving no HTTP.

Every `authsvc serve` process delivers the outbox too; workers add delivery capacity, or
keep delivering while the HTTP processes are being replaced. Any number may run at once, on
any host: on PostgreSQL they share the queue without delivering a message twice.
"""

from __future__ import annotations

import asyncio
import signal

import typer

from app.cli.common import fail, load_settings
from app.config import Settings


def worker(
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve this process's Prometheus metrics (the outbox's) on this port.",
    ),
    metrics_host: str | None = typer.Option(
        None, "--metrics-host", help="Bind address of --metrics-port (default: AUTH_HOST)."
    ),
) -> None:
    """Deliver the outbox until SIGTERM or SIGINT (messages being delivered then finish, or
    are handed back to the other dispatchers)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from app.cli.use_cases import SchemaNotAtHead
    from app.mail.senders import MailConfigurationError
    from app.security.keys.errors import KeyConfigurationError

    settings = load_settings()
    try:
        asyncio.run(_work(settings, metrics_port, metrics_host or settings.host))
    except (SchemaNotAtHead, MailConfigurationError, KeyConfigurationError) as exc:
        fail(str(exc), code=1)
    except (OSError, SQLAlchemyError, CommandError) as exc:
        fail(f"cannot use the database: {str(exc).strip().splitlines()[0]}", code=1)


async def _work(settings: Settings, metrics_port: int | None, metrics_host: str) -> None:
    from prometheus_client import start_http_server

    from app.cli.use_cases import SchemaNotAtHead
    from app.observability import configure_logging
    from app.runtime import open_runtime
    from app.schema_migrations import current_revision, head_revision, upgrade_to_head

    configure_logging(settings)
    if settings.should_auto_migrate:
        # Alembic runs its own event loop, so it must run on a thread.
        await asyncio.to_thread(upgrade_to_head, settings.database_url)
    async with open_runtime(settings) as runtime:
        async with runtime.engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
        if revision != head_revision():
            raise SchemaNotAtHead(revision, head_revision())
        _ = runtime.data_encryptor  # a missing key ends the command now, not a delivery
        if metrics_port is not None:
            start_http_server(metrics_port, metrics_host, registry=runtime.metrics.registry)
        dispatcher = runtime.outbox_dispatcher
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, dispatcher.request_stop)
        try:
            await dispatcher.run()
        finally:
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signal_number)
