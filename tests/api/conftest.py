"""Callers the OAuth endpoint tests share: a superuser, and a resource server allowed to
introspect."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.admins import admin_headers, register_client
from tests.support.flows import basic


@pytest.fixture
async def root(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, str]:
    """The bearer header of a superuser, root@example.com."""
    return await admin_headers(client, sessions, superuser=True)


@pytest.fixture
async def resource_server(client: httpx.AsyncClient, root: dict[str, str]) -> dict[str, str]:
    """The Basic credentials of a client allowed to introspect."""
    return basic(*await register_client(client, root, name="api", scopes=["introspect"]))
