"""The app under test with observability installed (even before `create_app` wires it)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.observability import install_observability
from app.observability.logging import json_formatter
from tests.support.databases import ResetDatabase


@pytest.fixture
async def app(settings: Settings, reset_database: ResetDatabase) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    if not hasattr(app.state, "metrics"):
        install_observability(app, settings)
    async with app.router.lifespan_context(app):
        yield app
    await reset_database()


class JsonLines:
    """The JSON lines the app's log handler writes, captured from the root logger."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line]


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    """Everything logged at DEBUG and above during the test, rendered as the service does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield JsonLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
