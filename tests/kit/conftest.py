"""The real service on a real socket (tests/support/live_server.py), for the consumer kit to talk to
over HTTP. `jwks_service` is the live service without database work, for tests that only need
the published keys and the service's codec.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from authsvc_kit import JWKSCache, TokenVerifier
from tests.support.databases import make_settings
from tests.support.live_server import LiveService, live_service, service_client, start_service

__all__ = ["live_service", "service_client"]  # fixtures

AUDIENCE = "authsvc"


@pytest.fixture
async def jwks_service(keys_dir: Path, tmp_path: Path) -> AsyncIterator[LiveService]:
    """The service with the worker's key ring and a database it never opens: enough to
    publish keys and sign tokens with its codec."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", keys_dir=keys_dir)
    live = await start_service(settings)
    try:
        yield live
    finally:
        await live.stop()


class CountingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that counts the requests it forwards, by path.

    Every request gets 30 s instead of the kit's 5 s default: no test here is about timeouts
    (an unreachable service is a refused connection, which fails at once), and on a CI box
    with two workers on two cores a connect to 127.0.0.1 once waited past 5 s for a turn.
    """

    def __init__(self) -> None:
        self._transport = httpx.AsyncHTTPTransport()
        self.requests: collections.Counter[str] = collections.Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests[request.url.path] += 1
        request.extensions["timeout"] = httpx.Timeout(30).as_dict()
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


@pytest.fixture
async def counting() -> AsyncIterator[CountingTransport]:
    transport = CountingTransport()
    yield transport
    await transport.aclose()


@pytest.fixture
async def http(counting: CountingTransport) -> AsyncIterator[httpx.AsyncClient]:
    """The kit's HTTP client: real requests, counted."""
    async with httpx.AsyncClient(transport=counting) as client:
        yield client


@dataclass
class ManualClock:
    """A monotonic clock the test moves by hand, for the JWKS cache's intervals."""

    now: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def kit_clock() -> ManualClock:
    return ManualClock()


def verifier_for(
    live: LiveService, http: httpx.AsyncClient, clock: ManualClock, **cache_options: Any
) -> TokenVerifier:
    """A consumer's verifier for the live service: its issuer, JWKS over `http`."""
    jwks = JWKSCache(
        f"{live.url}/.well-known/jwks.json", http_client=http, clock=clock, **cache_options
    )
    return TokenVerifier(live.url, AUDIENCE, jwks)
