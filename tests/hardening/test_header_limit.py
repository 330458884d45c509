"""`authsvc serve` bounds the request line and headers (`AUTH_MAX_HEADER_BYTES`, 16 KiB by
default): a client streaming a 32 MB header is cut off at once, and the server neither buffers
it nor stops answering others.

The real command in a child process, on a real socket: the limit lives in the HTTP protocol
uvicorn runs, below the app, so an in-process client would not reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.test_graceful_shutdown import Server, start_server

HUGE = 32 * 1024 * 1024
CHUNK = 64 * 1024
LIMIT = 16 * 1024
# Starting takes a second on an idle machine; far longer on a CI box busy with other tests.
START_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def server(
    database_url: str, keys_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for the module: its tests only read `/health/live`, nothing is stored."""
    started = start_server(
        database_url,
        keys_dir,
        1,
        tmp_path_factory.mktemp("serve") / "log",
        env={"AUTH_MAX_HEADER_BYTES": str(LIMIT)},
        start_timeout=START_TIMEOUT_SECONDS,
    )
    try:
        yield started
    finally:
        started.process.kill()
        started.process.wait()


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def stream_huge_header(server: Server, start: bytes, filler: bytes) -> tuple[int, bytes]:
    """Send a request whose headers go on, after `start`, for `HUGE` bytes of `filler`; how
    much was sent before the server stopped taking it, and what it answered (b"" if it only
    hung up)."""
    sent = 0
    answer = b""
    with connect(server) as connection:
        try:
            connection.sendall(b"GET /health/live HTTP/1.1\r\nHost: authsvc\r\n" + start)
            piece = filler * (CHUNK // len(filler))
            while sent < HUGE:
                connection.sendall(piece)
                sent += len(piece)
            connection.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        # A server that neither answers nor hangs up makes this time out: the test fails.
        with contextlib.suppress(ConnectionResetError):
            answer = connection.recv(4096)
    return sent, answer


@pytest.mark.parametrize(
    ("start", "filler"),
    [(b"X-Huge: ", b"x"), (b"", b"X-Filler: abcdefghijklmnopqrstuvwxyz\r\n")],
    ids=["one-huge-header", "many-small-headers"],
)
async def test_a_32_mb_header_is_cut_off_without_being_buffered(
    server: Server, start: bytes, filler: bytes
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(20):  # warm up: the memory a normal request needs is already there
            assert (await client.get("/health/live")).status_code == 200
    before = resident_kib(server.process.pid)
    started = time.monotonic()

    sent, answer = await asyncio.to_thread(stream_huge_header, server, start, filler)

    assert time.monotonic() - started < 10
    assert sent < HUGE, "the server read the whole 32 MB header"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/health/live")).status_code == 200
    assert resident_kib(server.process.pid) - before < 8 * 1024


async def test_headers_over_the_limit_are_answered_431_and_those_under_it_served(
    server: Server,
) -> None:
    big_but_fine = {"X-Context": "a" * (LIMIT // 2)}
    async with httpx.AsyncClient(base_url=server.url) as client:
        # Many requests on one connection: the count starts over with each request.
        for _ in range(10):
            response = await client.get("/health/live", headers=big_but_fine)
            assert response.status_code == 200
    request = (
        b"GET /health/live HTTP/1.1\r\nHost: authsvc\r\n"
        + b"X-Big: "
        + b"a" * (LIMIT + 4096)
        + b"\r\n\r\n"
    )

    def exchange() -> bytes:
        with connect(server) as connection:
            connection.sendall(request)
            return connection.recv(4096)

    answer = await asyncio.to_thread(exchange)

    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    assert b"application/problem+json" in answer
    assert b"connection: close" in answer
