"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for any test.

Use the `smtp_server` fixture by importing it into a conftest:

    from tests.mail.smtp_server import smtp_server  # noqa: F401

then point the service at it with `smtp_host="127.0.0.1", smtp_port=smtp_server.port,
email_backend="smtp"`, and read mail with `await smtp_server.wait_for()`, `text_part(...)`,
`extract_token(...)`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


class _FreePortController(Controller):
    """A Controller that may listen on port 0 and learns the port the OS picked."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpServer:
    """An SMTP server in a thread. With `username`/`password` it offers AUTH (over plain text:
    fine on loopback), answers 535 to wrong credentials and records good logins in `.logins`.
    AUTH stays optional: aiosmtpd warns when it is required without TLS.

    Faults for delivery tests: `refuse(reply)` answers every recipient with `reply` (a 4xx or
    5xx line) until `accept()`; `stall()` holds every session at its recipient, accepting
    nothing, until `resume()` (a client that dies meanwhile delivered nothing)."""

    def __init__(self, *, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        # Recipients refused, and sessions held, so far.
        self.refusals = 0
        self.stalls = 0
        self._refusal: str | None = None
        self._stalling = False
        self._lock = threading.Lock()
        smtp_options: dict[str, Any] = {}
        if username is not None:
            smtp_options = {
                "authenticator": _Authenticator(username, password or "", self.logins),
                "auth_require_tls": False,
            }
        self._controller = _FreePortController(self, hostname=HOST, port=0, **smtp_options)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def refuse(self, reply: str = "451 4.3.0 Try again later") -> None:
        with self._lock:
            self._refusal = reply

    def accept(self) -> None:
        with self._lock:
            self._refusal = None

    def stall(self) -> None:
        with self._lock:
            self._stalling = True

    def resume(self) -> None:
        with self._lock:
            self._stalling = False

    async def wait_for_stall(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until a session is held by `stall()`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.stalls == 0:
            if loop.time() >= deadline:
                raise AssertionError(f"no SMTP session arrived within {timeout}s")
            await asyncio.sleep(0.01)

    # The signature is the one flow tests use; a deadline reads better there than a scope.
    async def wait_for(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[EmailMessage]:
        """The first `count` messages received, waiting up to `timeout` seconds for them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages[:count])
                received = len(self.messages)
            if loop.time() >= deadline:
                raise AssertionError(f"expected {count} mail(s) within {timeout}s, got {received}")
            await asyncio.sleep(0.01)

    # aiosmtpd handler hooks, called on the server's thread.
    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self._lock:
            stalling = self._stalling
            if stalling:
                self.stalls += 1
        while stalling:
            # aiosmtpd cancels this when the client goes away.
            await asyncio.sleep(0.02)
            with self._lock:
                stalling = self._stalling
        with self._lock:
            refusal = self._refusal
            if refusal is not None:
                self.refusals += 1
                return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, username: str, password: str, logins: list[str]) -> None:
        self._username = username.encode()
        self._password = password.encode()
        self._logins = logins

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        is_valid = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self._username
            and auth_data.password == self._password
        )
        if is_valid:
            self._logins.append(self._username.decode())
        # handled=False: aiosmtpd then answers 535 itself (True would leave the client hanging).
        return AuthResult(success=is_valid, handled=False)


def text_part(message: EmailMessage) -> str:
    """The plain-text body of a received mail."""
    return _part(message, "plain")


def html_part(message: EmailMessage) -> str:
    """The HTML body of a received mail."""
    return _part(message, "html")


def extract_token(message: EmailMessage) -> str:
    """The `token` query value of the (first) link in the plain-text body."""
    url: str
    for url in re.findall(r"https?://\S+", text_part(message)):
        tokens = parse_qs(urlsplit(url).query).get("token")
        if tokens:
            return tokens[0]
    raise AssertionError("no link with a token= parameter in the mail's text part")


def sending_to(server: SmtpServer) -> dict[str, object]:
    """Settings overrides that make the service mail `server`, trying each mail once."""
    return {
        "email_backend": "smtp",
        "smtp_host": HOST,
        "smtp_port": server.port,
        "outbox_max_attempts": 1,
    }


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        raise AssertionError(f"mail has no text/{subtype} part")
    assert isinstance(body, EmailMessage)
    content = body.get_content()
    assert isinstance(content, str)
    return content


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running `SmtpServer` on a free port of 127.0.0.1, stopped after the test."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()
