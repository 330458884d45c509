"""The service behind PgBouncer (Debian's package) in transaction mode: the whole HTTP surface
works through it, in bursts of parallel requests that make transactions share a few server
connections. `AUTH_DB_STATEMENT_CACHE_SIZE=0` and no startup parameters are what make it work
(with the default cache of 100 the readiness probe already fails: a statement prepared on one
server connection is missing on the next). Migrations run through it too."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_session_factory
from app.schema_migrations import head_revision, upgrade_to_head
from tests.mail.smtp_server import SmtpServer, sending_to
from tests.oauth.provider_standin import OIDCStandin
from tests.scale.conftest import PGBOUNCER_POOL_SIZE, provider_setting
from tests.scale.surface import USERS, SurfaceTour, operations, routes_served
from tests.support.admins import grant
from tests.support.databases import drop_postgres_database, fresh_postgres_url, off_loop, worker_id
from tests.support.flows import bearer, register, sign_in
from tests.support.live_server import LiveService
from tests.support.pgbouncer import PgBouncer

# Raised, not disabled: every burst comes from one address.
GENEROUS_LIMITS = {
    "rate_limit_register_ip": "1000/hour",
    "rate_limit_email_ip": "1000/hour",
    "rate_limit_token_ip": "1000/15 minutes",
    "rate_limit_login_ip": "1000/15 minutes",
    "rate_limit_login_account": "1000/hour",
}


@pytest.fixture
def settings_overrides(
    pgbouncer: PgBouncer, database_url: str, smtp_server: SmtpServer, standin: OIDCStandin
) -> dict[str, object]:
    return {
        "database_url": pgbouncer.url_for(database_url),
        "db_statement_cache_size": 0,
        # Many more client connections than PgBouncer has server connections.
        "db_pool_size": 20,
        "db_max_overflow": 20,
        "oauth_providers": provider_setting(standin),
        **sending_to(smtp_server),
        **GENEROUS_LIMITS,
        # CPU the test's own process would spend besides the service (the strength estimate,
        # an access-log line per request), on nothing that touches the database.
        "password_min_guesses": 0,
        "log_level": "warning",
    }


async def test_the_whole_http_surface_works_through_pgbouncer_in_transaction_mode(
    live_service: LiveService,
    engine: AsyncEngine,
    pgbouncer: PgBouncer,
    smtp_server: SmtpServer,
    standin: OIDCStandin,
) -> None:
    # Idle connections are let go well before uvicorn's 5 s keep-alive ends them: a request
    # sent as the server closes its end would fail in the client, not in the service.
    limits = httpx.Limits(
        max_connections=USERS * 2, max_keepalive_connections=USERS * 2, keepalive_expiry=1
    )
    async with httpx.AsyncClient(base_url=live_service.url, limits=limits, timeout=30) as client:
        # The superuser is made as an operator makes one: registered, then promoted by the
        # admin use case over a direct connection.
        await register(client, "root@scale.example")
        async with create_session_factory(engine)() as session:
            await grant(session, "root@scale.example", superuser=True)
        root = bearer((await sign_in(client, "root@scale.example"))["access_token"])

        tour = SurfaceTour(
            client=client,
            root=root,
            mail=smtp_server,
            provider=standin,
            browser=lambda: httpx.AsyncClient(base_url=live_service.url, timeout=30),
        )
        await asyncio.wait_for(tour.run(), timeout=120)
        served = await routes_served(client)

    missed = operations(live_service.app.openapi()) - served.keys()
    assert not missed, f"the tour never reached {sorted(missed)}"
    failed = {route: statuses for route, statuses in served.items() if max(statuses) >= 500}
    assert not failed, failed
    # The service's connections really took turns on PgBouncer's few server connections.
    servers = await asyncio.to_thread(pgbouncer.show, "SERVERS")
    clients = await asyncio.to_thread(pgbouncer.show, "CLIENTS")
    database = live_service.settings.database_url.rsplit("/", 1)[1]
    assert len([s for s in servers if s["database"] == database]) <= PGBOUNCER_POOL_SIZE
    assert len([c for c in clients if c["database"] == database]) > PGBOUNCER_POOL_SIZE
    assert "ERROR" not in pgbouncer.log.read_text(), pgbouncer.log.read_text()


def test_migrations_run_through_pgbouncer(pgbouncer: PgBouncer) -> None:
    """`authsvc migrate` pointed at PgBouncer: Alembic's engine caches no statements."""
    name = f"authsvc_pgbouncer_{worker_id()}"
    url = fresh_postgres_url(name)
    try:
        upgrade_to_head(pgbouncer.url_for(url))
        assert off_loop(asyncio.run, _revision(url)) == head_revision()
    finally:
        drop_postgres_database(name)


async def _revision(database_url: str) -> str:
    dsn = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=10)
    try:
        return str(await connection.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await connection.close()
