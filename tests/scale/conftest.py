"""Fixtures of the replica tests: the live service on a socket, PgBouncer in front of the
worker's PostgreSQL, the SMTP server the service mails and an OpenID Connect provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mail.smtp_server import smtp_server
from tests.oauth.provider_standin import OIDCStandin
from tests.support.databases import admin_database_url
from tests.support.live_server import live_service, service_client
from tests.support.pgbouncer import PgBouncer, running_pgbouncer

__all__ = ["live_service", "service_client", "smtp_server"]  # fixtures

PROVIDER_CLIENT_ID = "authsvc-scale"
PROVIDER_CLIENT_SECRET = "scale-secret"
# Server connections PgBouncer may open per database: far fewer than the service's pool, so
# every burst makes transactions take turns on the same few server connections.
PGBOUNCER_POOL_SIZE = 4


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
def provider() -> Iterator[OIDCStandin]:
    """An OpenID Connect provider over HTTP."""
    standin = OIDCStandin(client_id=PROVIDER_CLIENT_ID, client_secret=PROVIDER_CLIENT_SECRET)
    standin.start()
    yield standin
    standin.stop()


def provider_setting(standin: OIDCStandin) -> dict[str, object]:
    """`AUTH_OAUTH_PROVIDERS` with `standin` as "acme"."""
    return {
        "acme": {
            "kind": "oidc",
            "discovery_url": standin.discovery_url,
            "client_id": PROVIDER_CLIENT_ID,
            "client_secret": PROVIDER_CLIENT_SECRET,
            "scopes": ["openid", "email", "profile"],
        }
    }
