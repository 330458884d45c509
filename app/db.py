"""Database engine and session factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from app.config import Settings
from app.db_faults import handle_connection_faults


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the folder of a SQLite database file so a first start needs no manual step."""
    url = make_url(database_url)
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)


# How long a SQLite connection waits for the writer lock when no statement timeout is set.
SQLITE_DEFAULT_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def enable_integrity(dbapi_connection: Any, _record: Any) -> None:
        # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked per connection;
        # WAL and a busy timeout let concurrent requests wait for the writer instead of failing.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
        cursor.close()

    return enable_integrity


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for `settings.database_url` (PostgreSQL/asyncpg or SQLite)."""
    statement_timeout = settings.db_statement_timeout_seconds
    if settings.is_sqlite:
        ensure_sqlite_directory(settings.database_url)
        engine = create_async_engine(settings.database_url, echo=settings.db_echo)
        busy_timeout = (
            _milliseconds(statement_timeout)
            if statement_timeout
            else SQLITE_DEFAULT_BUSY_TIMEOUT_MS
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout))
        return engine
    # Set per connection at connect time (a startup parameter): no extra round trip per query.
    server_settings = {"statement_timeout": str(_milliseconds(statement_timeout))}
    if not statement_timeout:
        server_settings = {}
    # Every wait for the database is bounded by the command timeout: one that runs out fails
    # the request with 503 (see app/db_faults.py), whatever froze.
    command_timeout = settings.db_command_timeout_seconds
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=min(settings.db_pool_timeout_seconds, command_timeout),
        connect_args={
            "timeout": min(settings.db_connect_timeout_seconds, command_timeout),
            "command_timeout": command_timeout,
            "server_settings": server_settings,
        },
    )
    handle_connection_faults(engine)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: services return ORM objects that routers serialise after commit.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# Key in a session's `info`: the callbacks waiting for its current transaction to commit.
_AFTER_COMMIT = "authsvc.after_commit"


def call_after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback` once `session`'s current transaction has committed, never if it rolls
    back. The same callback registered twice before that commit is called once."""
    sync_session = session.sync_session
    waiting: dict[Callable[[], None], None] | None = sync_session.info.get(_AFTER_COMMIT)
    if waiting is None:
        waiting = sync_session.info[_AFTER_COMMIT] = {}
        event.listen(sync_session, "after_commit", _run_after_commit)
        event.listen(sync_session, "after_rollback", _forget_after_commit)
    waiting[callback] = None


def _run_after_commit(sync_session: Session) -> None:
    waiting: dict[Callable[[], None], None] = sync_session.info[_AFTER_COMMIT]
    callbacks = list(waiting)
    waiting.clear()
    for callback in callbacks:
        callback()


def _forget_after_commit(sync_session: Session) -> None:
    sync_session.info[_AFTER_COMMIT].clear()
