"""`AUTH_DATABASE_URL` listing several hosts with `target_session_attrs=read-write`: the
service connects to the first host that answers as a primary, so after a failover the
promoted standby is found without a configuration change."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import create_engine, engine_url
from tests.support.flows import bearer, register_and_sign_in
from tests.support.live_server import LiveService
from tests.support.processes import free_port


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("an embedded SQLite file has no hosts to fail over between")


def two_hosts(database_url: str, *, query_form: bool) -> tuple[str, int]:
    """`database_url` with a first host whose port refuses connections, then the real
    server; in libpq's `h1:p1,h2:p2` form or in SQLAlchemy's `?host=` form. And the port of
    the real server."""
    url = make_url(database_url)
    closed, real = free_port(), url.port or 5432
    hosts = [f"127.0.0.1:{closed}", f"{url.host}:{real}"]
    user = url.username or "postgres"
    attrs = "target_session_attrs=read-write"
    if query_form:
        listed = "&".join(f"host={host}" for host in hosts)
        return f"postgresql+asyncpg://{user}@/{url.database}?{listed}&{attrs}", real
    return f"postgresql+asyncpg://{user}@{','.join(hosts)}/{url.database}?{attrs}", real


@pytest.fixture(params=["libpq list", "query form"])
def settings_overrides(
    request: pytest.FixtureRequest, postgresql_only: None, database_url: str
) -> dict[str, object]:
    url, _ = two_hosts(database_url, query_form=request.param == "query form")
    return {"database_url": url}


async def test_the_service_skips_a_host_that_is_down_and_serves_from_the_primary(
    live_service: LiveService, service_client: httpx.AsyncClient, database_url: str
) -> None:
    assert (await service_client.get("/health/ready")).status_code == 200
    tokens = await register_and_sign_in(service_client, "ada@example.com")
    me = await service_client.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text

    # An engine built from the same settings (the service's own lives on its server's event
    # loop) is connected to the second host listed, a primary.
    engine = create_engine(live_service.settings)
    try:
        async with engine.connect() as connection:
            port = await connection.scalar(text("SELECT inet_server_port()"))
            in_recovery = await connection.scalar(text("SELECT pg_is_in_recovery()"))
    finally:
        await engine.dispose()
    assert port == (make_url(database_url).port or 5432)
    assert in_recovery is False


def test_a_libpq_host_list_becomes_sqlalchemy_multi_host_form() -> None:
    url = engine_url(
        "postgresql+asyncpg://app:p%40ss@db-a:5432,db-b,[::1]:6432/auth"
        "?target_session_attrs=read-write"
    )

    parsed = make_url(url)
    assert parsed.username == "app"
    assert parsed.password == "p@ss"
    assert parsed.database == "auth"
    assert parsed.query == {
        "host": ("db-a:5432", "db-b:5432", "[::1]:6432"),
        "target_session_attrs": "read-write",
    }


@pytest.mark.parametrize(
    "unchanged",
    [
        "postgresql+asyncpg://app@db:5432/auth",
        "postgresql+asyncpg://app@/auth?host=db-a:5432&host=db-b:5432",
        "sqlite+aiosqlite:///./var/authsvc.db",
    ],
)
def test_other_urls_are_left_as_they_are(unchanged: str) -> None:
    assert engine_url(unchanged) == unchanged
