"""What the PostgreSQL engine does with connections that fail, so that a database that is
down, restarting, refusing connections or unreachable behind a frozen link costs a request a
bounded wait and a 503, never a hang, and the pool heals by itself afterwards."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

# operator_intervention: admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown,
# cannot_connect_now (starting up, shutting down, in recovery). Plus class 08, connection
# exceptions: either way this connection is gone or was never made.
_CONNECTION_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def _sqlstate(error: BaseException | None) -> str:
    return str(getattr(error, "sqlstate", None) or "")


def is_connection_lost(error: BaseException | None) -> bool:
    """Whether a driver error says the server ended (or never accepted) the connection."""
    sqlstate = _sqlstate(error)
    return sqlstate in _CONNECTION_LOST_SQLSTATES or sqlstate.startswith("08")


def _on_error(context: ExceptionContext) -> None:
    error = context.original_exception
    if context.connection is None:
        # No connection could be made (a refusing database: ALLOW_CONNECTIONS false, too many
        # clients, starting up). To the pool and the error mapper that is a lost connection.
        context.is_disconnect = True
        return
    if isinstance(error, TimeoutError):
        # asyncpg's command timeout ran out: the link may be frozen, so anything more on this
        # connection (a cancel request, a rollback) could wait as long again. Drop it (see
        # `_close_at_once`); the server's statement_timeout ends what it may still run. Only
        # this connection: one slow answer says nothing about the others.
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False
    elif is_connection_lost(error):
        # Usually already detected (the socket is closed); a restarted server ended them all.
        context.is_disconnect = True


def _discard_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # A server that restarted, failed over or ended our backends closed their sockets, which
    # the driver notices while they sit in the pool. Checking that costs nothing, where
    # `pool_pre_ping` pays three round trips (BEGIN, ping, ROLLBACK) on every checkout. The
    # pool retries the checkout with a fresh connection. A silently dead link is not seen
    # here: its first statement fails after the command timeout instead.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _close_at_once(dbapi_connection: Any, _record: Any) -> None:
    # Whenever the pool lets a connection go (dropped after a failure, recycled, surplus on
    # return, disposed at shutdown), close its socket without the polite goodbye: over a
    # frozen link that goodbye waits 2 s (SQLAlchemy's terminate) or forever (a plain close,
    # which has no timeout). PostgreSQL takes an idle client's end of file as quietly.
    dbapi_connection.driver_connection.terminate()


def handle_connection_faults(engine: AsyncEngine) -> None:
    """Install the above on a PostgreSQL (asyncpg) engine."""
    event.listen(engine.sync_engine, "handle_error", _on_error)
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed_connection)
    event.listen(engine.sync_engine.pool, "close", _close_at_once)
