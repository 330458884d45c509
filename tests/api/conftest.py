"""Fixtures of the HTTP tests."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@pytest.fixture
def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    """Sessions over the database of the app under test, to set up or check state directly."""
    factory: async_sessionmaker[AsyncSession] = app.state.session_factory
    return factory
