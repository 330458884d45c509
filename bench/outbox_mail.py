"""What the outbox scenario sends: a verification mail per message, and the SMTP sink that
takes them (aiosmtpd in a thread of the runner, on the load generator's CPU)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

from aiosmtpd.controller import Controller

from app.mail import OutgoingEmail, verification_email


def bench_mail(number: int) -> OutgoingEmail:
    """A verification mail to `user<number>@bench.example` with a link of realistic length."""
    token = f"{number:043d}"  # the length of a real 256-bit url-safe token
    return verification_email(
        f"user{number}@bench.example",
        f"https://app.bench.example/verify?token={token}",
        timedelta(hours=24),
    )


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        with self.lock:
            self.count += 1
            if self.first is None:
                self.first = now
            self.last = now
        return "250 Message accepted for delivery"


class _FreePortController(Controller):
    """A Controller that may listen on port 0 and learns the port the OS picked."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpSink:
    """Accepts every mail, keeps only how many came and when the first and last did."""

    def __init__(self) -> None:
        self._counter = _Counter()
        self._controller = _FreePortController(self._counter, hostname="127.0.0.1", port=0)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def reset(self) -> None:
        with self._counter.lock:
            self._counter.count = 0
            self._counter.first = self._counter.last = None

    def snapshot(self) -> tuple[int, float | None, float | None]:
        """Messages received, and the perf_counter times of the first and the last."""
        with self._counter.lock:
            return self._counter.count, self._counter.first, self._counter.last
