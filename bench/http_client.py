"""A minimal HTTP/1.1 keep-alive client on asyncio streams, light enough to load a server.

Requests are encoded to bytes once, up front; responses are parsed just far enough to get the
status, the headers and the body (Content-Length or chunked). No TLS, no pipelining.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

USER_AGENT = "authsvc-bench/1"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a server listens."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


def encode_request(
    method: str,
    path: str,
    target: Target,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {target.authority}", f"User-Agent: {USER_AGENT}"]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get_request(path: str, target: Target, *, bearer: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return encode_request("GET", path, target, headers=headers)


def form_request(
    path: str,
    target: Target,
    fields: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    body = urlencode(fields).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    return encode_request("POST", path, target, headers=headers, body=body)


def json_request(path: str, target: Target, payload: Any) -> bytes:
    body = json.dumps(payload).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    return encode_request("POST", path, target, headers=headers, body=body)


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one response; raises `asyncio.IncompleteReadError` if the peer closes early."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:  # delimited by the end of the connection
        body = await reader.read()
        headers["connection"] = "close"
    return Response(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class HttpConnection:
    """One keep-alive connection; reconnects on the next request after the server closed it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reconnects = 0
        self._opened = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self._writer is not None:
            return
        if self._opened:
            self.reconnects += 1
        self._reader, self._writer = await asyncio.open_connection(
            self.target.host, self.target.port
        )
        self._opened = True

    async def request(self, raw: bytes) -> Response:
        """Send pre-encoded request bytes and read the response."""
        if self._writer is None:
            await self.open()
        reader, writer = self._reader, self._writer
        assert reader is not None
        assert writer is not None
        try:
            writer.write(raw)
            response = await read_response(reader)
        except BaseException:
            await self.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def fetch(target: Target, raw: bytes) -> Response:
    """One request on a fresh connection (set-up steps, readiness probes)."""
    connection = HttpConnection(target)
    try:
        async with asyncio.timeout(30.0):
            return await connection.request(raw)
    finally:
        await connection.close()
