"""The HTTP/1.1 protocol `authsvc serve` runs: uvicorn's httptools parser with a bound on the
bytes a request line and headers may take; and the supervisor of `authsvc serve --workers N`.

httptools keeps appending a header's pieces until the header ends, so a client could make a
worker hold a 32 MB header (and copy it over and over while it grows). uvicorn bounds this
only for its slower h11 parser; this protocol counts what arrives while headers are awaited
and answers 431 once they pass `AUTH_MAX_HEADER_BYTES`, before the parser sees the excess.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from http import HTTPStatus
from types import FrameType
from typing import Any

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Multiprocess

from app.config import get_settings

_PROBLEM_TYPE = "urn:authsvc:problem:request-header-fields-too-large"


class BoundedHeadersProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` refusing a request whose line and headers exceed the limit.

    Bytes are counted per `data_received` chunk from the end of one request to the end of the
    next one's headers, so the parser holds at most the limit plus one read (uvicorn reads at
    most 256 KiB at a time). Bodies are not counted: the body limit applies to them.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Read here, not passed in: uvicorn builds one protocol per connection, in whichever
        # worker process accepted it, from the settings of that process's environment.
        self.max_header_bytes = get_settings().max_header_bytes
        self.header_bytes = 0
        self.awaiting_headers = True

    def data_received(self, data: bytes) -> None:
        if self.awaiting_headers:
            self.header_bytes += len(data)
            if self.header_bytes > self.max_header_bytes:
                self._refuse_headers()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.awaiting_headers = False
        self.header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.awaiting_headers = True  # whatever comes next on this connection is a new request
        super().on_message_complete()

    def _refuse_headers(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(self._response_431())
        # A response still being sent on this connection cannot be followed by another one
        # mid-stream: then the connection is simply closed.
        self.transport.close()

    def _response_431(self) -> bytes:
        status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        body = json.dumps(
            {
                "type": _PROBLEM_TYPE,
                "title": status.phrase,
                "status": status.value,
                "detail": f"The request line and headers are over {self.max_header_bytes} bytes.",
            }
        ).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "content-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        return head.encode("ascii") + body


class DrainingMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, with `authsvc serve`'s SIGTERM promise kept across workers.

    uvicorn's supervisor looks at signals every half second and keeps its own copy of the
    listening socket open until it exits, so after a SIGTERM the kernel still completes new
    connections into the backlog that no worker will ever accept (the client waits, then is
    reset). Here SIGTERM and SIGINT at once close the supervisor's copy and pass SIGTERM on to
    every worker, each of which closes its own copy and drains its requests in flight for
    `AUTH_SHUTDOWN_GRACE_SECONDS`: once the last copy is closed, new connections are refused.
    No worker is replaced once stopping has begun.
    """

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.stopping = False
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, self._stop_at_once)

    def _stop_at_once(self, received: int, _frame: FrameType | None) -> None:
        # A signal handler: only queues, closes file descriptors and sends signals. The loop
        # in `run` sees the queued signal within half a second and joins the workers.
        self.signal_queue.append(received)
        if self.stopping:
            return
        self.stopping = True
        for listener in self.sockets:
            listener.close()
        for worker in self.processes:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signal.SIGTERM)

    def keep_subprocess_alive(self) -> None:
        if not self.stopping:  # a worker that ended after our SIGTERM is not replaced
            super().keep_subprocess_alive()

    @property
    def failed_to_start(self) -> bool:
        """Whether a worker exited before it could serve (the app would fail the same way
        on every restart, so the supervisor stopped)."""
        return any(worker.exitcode == STARTUP_FAILURE for worker in self.processes)
