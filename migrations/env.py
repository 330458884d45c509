"""Alembic environment: runs migrations through the service's own async engine settings."""

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.db import engine_url
from app.models import Base
from app.models.base import UTCDateTime

config = context.config
target_metadata = Base.metadata

# Called from the app or tests, the caller owns logging; from the alembic CLI, the .ini does.
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else Settings().database_url


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations stay free of app imports: our UTC wrapper is a plain timestamptz column.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # PostgreSQL-only search indexes made by hand in migration 0005, not in the models.
    return not (type_ == "index" and reflected and (name or "").endswith("_trgm"))


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        include_object=_include_object,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=True,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _connect_args(url: str) -> dict[str, Any]:
    # No statement cache: migrations run rarely, and unnamed statements work through
    # PgBouncer in transaction mode too (named ones clash between its clients).
    if make_url(url).drivername == "postgresql+asyncpg":
        return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    return {}


async def run_migrations_online() -> None:
    url = engine_url(_database_url())
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=_connect_args(url))
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
