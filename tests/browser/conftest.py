"""Fixtures of the browser tests: chromium, a page per test and screenshots on failure
(plugin.py), the service on a real socket (`live_service`, `service_client`,
tests/support/live_server.py), a superuser of it (`live_root`), and a relying party of it
(`relying_party`; registration.py registers it as a client).

Browser tests run on PostgreSQL only; a test that must also run on SQLite says so with
`@pytest.mark.every_backend`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser.plugin import (
    browser,
    chromium,
    page,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    snapshot,
)
from tests.support.admins import admin_headers
from tests.support.live_server import LiveService, live_service, service_client
from tests.support.relying_party import RelyingParty

__all__ = [  # fixtures and hooks
    "browser",
    "chromium",
    "live_service",
    "page",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "service_client",
    "snapshot",
]


@pytest.fixture
def relying_party(live_service: LiveService) -> Iterator[RelyingParty]:
    """A relying party of the live service, endpoints from its discovery document. Register
    `relying_party.redirect_uri` (and `post_logout_redirect_uri`) as a client, then
    `relying_party.use_client(client_id, client_secret)`."""
    rp = RelyingParty(provider=live_service.url).start()
    try:
        yield rp
    finally:
        rp.stop()


@pytest.fixture
async def live_root(
    service_client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> dict[str, str]:
    """The bearer header of a superuser of the live service, root@example.com."""
    return await admin_headers(service_client, session_factory, superuser=True)
