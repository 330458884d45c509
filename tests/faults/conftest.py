"""Fixtures of the fault tests: PostgreSQL reached through a proxy the test controls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from tests.faults.tcp_proxy import TcpProxy


@pytest.fixture
async def proxy(backend: str, database_url: str) -> AsyncIterator[TcpProxy]:
    """A proxy in front of this worker's PostgreSQL (SQLite has no connection to lose)."""
    if backend != "postgresql":
        pytest.skip("an embedded SQLite file has no connection to lose")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()
