"""The real service on a real socket: uvicorn in a thread of its own (with its own event loop)
on a free port of 127.0.0.1, with `issuer` and `public_url` set to that address. Clients reach
it with httpx like any other service would.

`live_service` and `service_client` are fixtures: a test directory's conftest imports them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.runtime import runtime_of
from app.security.access_tokens import AccessTokenCodec

if TYPE_CHECKING:
    from tests.support.databases import ResetDatabase


@dataclass
class LiveService:
    """The service under uvicorn in a background thread."""

    url: str
    app: FastAPI
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def codec(self) -> AccessTokenCodec:
        """The running service's own token codec (signs with its current key)."""
        return runtime_of(self.app).token_codec

    def mint(self, **claims: Any) -> str:
        """An access token signed by the service itself, for a made-up user."""
        return self.codec.encode({"sub": "3f9c1d7e-0000-4000-8000-000000000001", **claims})

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """`claims` signed with the service's current private key; the header is `typ` at+jwt
        and the key's `kid` unless `header` says otherwise (None drops a member)."""
        key = self.codec.keys.current().signing_key
        assert key.private_key is not None
        headers = {"kid": key.kid, "typ": "at+jwt", **header}
        headers = {name: value for name, value in headers.items() if value is not None}
        return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)

    async def stop(self) -> None:
        """Shut the server down (idempotent): afterwards its port refuses connections."""
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 15)
        assert not self.thread.is_alive(), "the live server did not stop"


async def start_service(settings: Settings) -> LiveService:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings = settings.model_copy(update={"issuer": url, "public_url": url})
    app = create_app(settings)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", loop="asyncio"
    )
    server = uvicorn.Server(config)  # not in the main thread: installs no signal handlers
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"authsvc {url}", daemon=True
    )
    thread.start()
    live = LiveService(url, app, settings, server, thread)
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            await live.stop()
            pytest.fail("the live authsvc did not start")
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/health/live")).status_code == 200
    return live


@pytest.fixture
async def live_service(
    settings: Settings, reset_database: ResetDatabase
) -> AsyncIterator[LiveService]:
    """The service on the worker's database (both backends); tables reset afterwards."""
    live = await start_service(settings)
    try:
        yield live
    finally:
        await live.stop()
        await reset_database()


@pytest.fixture
async def service_client(live_service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the live service, as a frontend would be. Its timeout is generous: on a
    machine busy with other work (CI runs two workers on two cores) the service's password
    hashing threads, which run at the lowest CPU priority, can take seconds to get a turn."""
    async with httpx.AsyncClient(base_url=live_service.url, timeout=30) as client:
        yield client
