"""Fixtures of the replica tests.

Three `authsvc serve` processes on one PostgreSQL database and one Redis, as replicas
behind a load balancer would run: the same settings, the same keys, the same public address
(`PUBLIC_URL`, where the balancer would be). Tests talk to each replica directly, so they
decide which one serves each request. The replicas are started once per module (starting
three processes costs seconds); tests use addresses and accounts of their own.

Also: PgBouncer in front of the worker's PostgreSQL (`pgbouncer`), and the live service on a
socket (`live_service`, `service_client`) with the SMTP server it mails (`smtp_server`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.mail.smtp_server import smtp_server
from tests.oauth.provider_standin import OIDCStandin
from tests.support.databases import (
    admin_database_url,
    drop_postgres_database,
    fresh_postgres_url,
    worker_id,
)
from tests.support.live_server import live_service, service_client
from tests.support.pgbouncer import PgBouncer, running_pgbouncer
from tests.support.processes import ServeProcess, run_authsvc, serve_processes

__all__ = ["live_service", "service_client", "smtp_server"]  # fixtures

PUBLIC_URL = "http://localhost:8000"
REPLICAS = 3
CLIENT_ID = "authsvc-scale"
CLIENT_SECRET = "scale-secret"
# The sign-in budget of one account from one address: counted across every replica.
ACCOUNT_IP_LIMIT = 10
# Server connections PgBouncer may open per database: far fewer than the service's pool, so
# every burst makes transactions take turns on the same few server connections.
PGBOUNCER_POOL_SIZE = 4


@pytest.fixture(scope="module")
def standin() -> Iterator[OIDCStandin]:
    """An OpenID Connect provider the replicas sign users in with ("acme")."""
    server = OIDCStandin(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    yield server
    server.stop()


def provider_setting(standin: OIDCStandin) -> dict[str, object]:
    """`AUTH_OAUTH_PROVIDERS` with `standin` as "acme"."""
    return {
        "acme": {
            "kind": "oidc",
            "discovery_url": standin.discovery_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile"],
        }
    }


@pytest.fixture
def pgbouncer(backend: str, tmp_path: Path) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of this worker's PostgreSQL."""
    if backend != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections; an embedded SQLite file has none")
    with running_pgbouncer(
        tmp_path, admin_database_url(), pool_size=PGBOUNCER_POOL_SIZE
    ) as bouncer:
        yield bouncer


@pytest.fixture(scope="module")
def replica_settings(
    tmp_path_factory: pytest.TempPathFactory, standin: OIDCStandin
) -> Iterator[dict[str, str]]:
    """What every replica is configured with: one database (migrated), one Redis namespace,
    one key directory (created once, as `authsvc keys generate` does before a deployment)."""
    name = f"scale_{worker_id()}"
    database_url = fresh_postgres_url(name)
    keys_dir = tmp_path_factory.mktemp("scale-keys")
    settings = {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_REDIS_URL": "redis://127.0.0.1:6379/0",
        "AUTH_RATE_LIMIT_KEY_PREFIX": f"scale-{uuid.uuid4().hex}",
        "AUTH_RATE_LIMIT_LOGIN_ACCOUNT_IP": f"{ACCOUNT_IP_LIMIT}/15 minutes",
        # Every test registers from 127.0.0.1: the per-address budgets are not under test.
        "AUTH_RATE_LIMIT_REGISTER_IP": "10000/hour",
        "AUTH_RATE_LIMIT_LOGIN_IP": "10000/15 minutes",
        "AUTH_ISSUER": PUBLIC_URL,
        "AUTH_PUBLIC_URL": PUBLIC_URL,
        # A rotated key is published 3 s before it signs (JWKS cached 1 s, checked every 1 s):
        # the lifecycle of the defaults, in seconds instead of minutes.
        "AUTH_JWKS_MAX_AGE_SECONDS": "1",
        "AUTH_KEY_CHECK_INTERVAL_SECONDS": "1",
        "AUTH_KEY_PUBLISH_AHEAD_SECONDS": "3",
        "AUTH_OAUTH_PROVIDERS": json.dumps(provider_setting(standin)),
        "AUTH_OAUTH_REDIRECT_URIS": json.dumps([f"{PUBLIC_URL}/auth/oauth/acme/callback"]),
    }
    run_authsvc("migrate", settings=settings)
    run_authsvc("keys", "generate", settings=settings)
    run_authsvc("keys", "audit-key", settings=settings)
    yield settings
    drop_postgres_database(name)


@pytest.fixture(scope="module")
def replicas(
    replica_settings: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServeProcess]]:
    with serve_processes(
        REPLICAS, replica_settings, tmp_path_factory.mktemp("scale-logs")
    ) as running:
        yield running


@pytest.fixture
async def clients(replicas: list[ServeProcess]) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per replica: A, B and C."""
    opened = [httpx.AsyncClient(base_url=replica.url, timeout=30) for replica in replicas]
    try:
        yield opened
    finally:
        for client in opened:
            await client.aclose()


@pytest.fixture
def email() -> str:
    """An address no other test of the module uses."""
    return f"scale-{uuid.uuid4().hex[:12]}@example.com"


def log_of(replica: ServeProcess) -> str:
    return Path(replica.log).read_text(errors="replace")
