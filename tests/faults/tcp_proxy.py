"""A TCP proxy the tests can cut, freeze and restore: a database outage without stopping
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.engine import make_url


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `stop` refuses new connections and kills the
    open ones (as a crashed or unreachable server would), `start` serves again on the same
    port. `freeze` holds every byte and every new connection without closing or resetting
    anything (a link that silently stopped carrying packets); `thaw` lets them through."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def url_to(self, database_url: str) -> str:
        """`database_url`, reached through this proxy."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.thaw()  # whatever was held goes nowhere now

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._flowing.wait()  # accepted, but not a byte answered while frozen
        if writer.transport.is_closing():
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        await self._flowing.wait()  # a frozen link does not carry the close either
        writer.transport.abort()
        self._writers.discard(writer)
