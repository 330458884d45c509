"""The `app` under test, with a route that fails, for the 500 the hardened stack sends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from tests.support.databases import ResetDatabase


@pytest.fixture
async def app(settings: Settings, reset_database: ResetDatabase) -> AsyncIterator[FastAPI]:
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("a bug")

    # An unhandled error, to check the 500 that Starlette's outermost middleware sends.
    app.add_api_route("/test-only/boom", boom)
    async with app.router.lifespan_context(app):
        yield app
    await reset_database()
