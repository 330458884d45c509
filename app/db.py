"""Database engine and session factory."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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


# libpq's default, for a listed host without a port.
DEFAULT_POSTGRES_PORT = 5432


def engine_url(database_url: str) -> str:
    """`database_url` in the form SQLAlchemy parses.

    A libpq-style host list, `postgresql+asyncpg://user@h1:5432,h2:5432/db`, which SQLAlchemy
    cannot parse, becomes its own multi-host form `postgresql+asyncpg://user@/db?host=h1:5432&
    host=h2:5432`; asyncpg then tries the hosts in order (a missing port is 5432). Other URLs,
    the `?host=` form included, are returned unchanged. Query parameters such as
    `target_session_attrs=read-write` are kept and reach asyncpg as connect arguments.
    """
    scheme, separator, rest = database_url.partition("://")
    if not separator:
        return database_url
    netloc_end = min((i for i in (rest.find("/"), rest.find("?")) if i != -1), default=len(rest))
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    userinfo, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return database_url
    entries = [_with_port(host) for host in hosts.split(",")]
    path, _, query = tail.partition("?")
    host_query = urlencode([("host", entry) for entry in entries])
    query = f"{host_query}&{query}" if query else host_query
    return f"{scheme}://{userinfo}{at}{path or '/'}?{query}"


def _with_port(host: str) -> str:
    if not host:
        raise ValueError("AUTH_DATABASE_URL lists an empty host")
    bracketed = host.startswith("[")  # an IPv6 address: [::1]:5432
    has_port = "]:" in host if bracketed else ":" in host
    return host if has_port else f"{host}:{DEFAULT_POSTGRES_PORT}"


@cache
def _connection_class(statement_timeout_ms: int) -> type[Any]:
    """An asyncpg connection class whose every transaction has `statement_timeout_ms`.

    The timeout is `SET LOCAL` in the same simple-protocol message as the transaction's
    `BEGIN` (asyncpg's `Transaction.start` sends `BEGIN ...;` through `execute`), so it costs
    no extra round trip and leaves no session state behind: PgBouncer in transaction mode
    hands the server connection to another client after `COMMIT`, and refuses
    `statement_timeout` as a startup parameter. tests/faults/test_statement_timeout.py proves
    the timeout still applies.
    """
    import asyncpg

    set_local = f" SET LOCAL statement_timeout = {statement_timeout_ms:d};"

    async def execute(self: Any, query: str, *args: Any, **options: Any) -> Any:
        if not args and query.startswith("BEGIN"):
            query = query if query.endswith(";") else f"{query};"
            query += set_local
        return await asyncpg.Connection.execute(self, query, *args, **options)

    return type("StatementTimeoutConnection", (asyncpg.Connection,), {"execute": execute})


def asyncpg_connect_args(settings: Settings) -> dict[str, Any]:
    """What asyncpg (and SQLAlchemy's asyncpg adapter) are told for each new connection.

    Nothing is set in startup parameters (`server_settings`), so the same arguments work
    directly and through PgBouncer in transaction mode. `AUTH_DB_STATEMENT_CACHE_SIZE` sizes
    both statement caches; at 0 asyncpg prepares every statement unnamed and parses it again
    when it runs, which whichever server connection PgBouncer lends accepts.
    """
    cache_size = settings.db_statement_cache_size
    command_timeout = settings.db_command_timeout_seconds
    arguments: dict[str, Any] = {
        "timeout": min(settings.db_connect_timeout_seconds, command_timeout),
        "command_timeout": command_timeout,
        "statement_cache_size": cache_size,  # asyncpg's own
        "prepared_statement_cache_size": cache_size,  # SQLAlchemy's adapter's
    }
    if settings.db_statement_timeout_seconds:
        arguments["connection_class"] = _connection_class(
            _milliseconds(settings.db_statement_timeout_seconds)
        )
    return arguments


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """Build the async engine for `settings.database_url` (PostgreSQL/asyncpg or SQLite).

    `pool_size`: a pool of exactly that many connections (no overflow) instead of the
    configured `AUTH_DB_POOL_SIZE` + `AUTH_DB_MAX_OVERFLOW`, for background work that must
    neither take the requests' connections nor wait behind them."""
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
    # Every wait for the database is bounded by the command timeout: one that runs out fails
    # the request with 503 (see app/db_faults.py), whatever froze.
    engine = create_async_engine(
        engine_url(settings.database_url),
        echo=settings.db_echo,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0 if pool_size else settings.db_max_overflow,
        pool_timeout=min(settings.db_pool_timeout_seconds, settings.db_command_timeout_seconds),
        connect_args=asyncpg_connect_args(settings),
    )
    handle_connection_faults(engine)
    return engine


def create_session_factory(
    engine: AsyncEngine, *, after_commit: Callable[[], None] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions over `engine`; `after_commit` is called once each of their transactions has
    committed (the token-state cache's read-your-writes)."""
    if after_commit is None:
        # expire_on_commit=False: services return ORM objects that routers serialise after
        # commit.
        return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    class CommitObservingSession(Session):
        """This factory's sessions only: other factories (other apps in one process) are not
        observed."""

    event.listen(CommitObservingSession, "after_commit", lambda _session: after_commit())
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=False,
        sync_session_class=CommitObservingSession,
    )


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
