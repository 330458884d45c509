from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import aiosmtplib
import pytest

from app.mail import (
    ConsoleEmailSender,
    OutgoingEmail,
    SmtpEmailSender,
    build_email_sender,
)
from tests.mail.conftest import MakeSettings
from tests.mail.smtp_server import HOST, SmtpServer, html_part, text_part

EMAIL = OutgoingEmail(
    to="alice@example.org",
    subject="Verify your email address",
    text="Open https://app.example.com/verify?token=abc",
    html='<p><a href="https://app.example.com/verify?token=abc">Verify</a></p>',
)


async def test_smtp_sender_delivers_a_multipart_text_and_html_message(
    smtp_server: SmtpServer, make_mail_settings: MakeSettings
) -> None:
    await SmtpEmailSender(make_mail_settings(smtp_server)).send(EMAIL)

    [message] = await smtp_server.wait_for()
    assert message["From"] == "authsvc <no-reply@auth.example.com>"
    assert message["To"] == "alice@example.org"
    assert message["Subject"] == "Verify your email address"
    assert message["Date"] is not None
    assert message["Message-ID"].endswith("@auth.example.com>")
    assert message.get_content_type() == "multipart/alternative"
    assert text_part(message).strip() == EMAIL.text
    assert html_part(message).strip() == EMAIL.html


async def test_smtp_sender_logs_in_with_the_configured_credentials(
    make_mail_settings: MakeSettings,
) -> None:
    server = SmtpServer(username="mailer", password="s3cret").start()
    try:
        settings = make_mail_settings(server, smtp_username="mailer", smtp_password="s3cret")
        await SmtpEmailSender(settings).send(EMAIL)
        assert len(await server.wait_for()) == 1
        assert server.logins == ["mailer"]
    finally:
        server.stop()


async def test_smtp_sender_raises_when_the_server_refuses_the_credentials(
    make_mail_settings: MakeSettings,
) -> None:
    server = SmtpServer(username="mailer", password="s3cret").start()
    try:
        settings = make_mail_settings(server, smtp_username="mailer", smtp_password="wrong")
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await SmtpEmailSender(settings).send(EMAIL)
        assert server.messages == []
    finally:
        server.stop()


async def test_smtp_sender_raises_when_the_server_is_down(
    make_mail_settings: MakeSettings,
) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(aiosmtplib.SMTPConnectError):
        await SmtpEmailSender(make_mail_settings(smtp_port=closed_port)).send(EMAIL)


@pytest.fixture
async def silent_server_port() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hang, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_smtp_sender_gives_up_on_a_silent_server_after_the_timeout(
    silent_server_port: int, make_mail_settings: MakeSettings
) -> None:
    settings = make_mail_settings(smtp_port=silent_server_port, smtp_timeout_seconds=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await SmtpEmailSender(settings).send(EMAIL)
    assert loop.time() - started < 2


def test_smtp_sender_refuses_starttls_together_with_implicit_tls(
    make_mail_settings: MakeSettings,
) -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        SmtpEmailSender(make_mail_settings(smtp_starttls=True, smtp_use_tls=True))


async def test_console_sender_logs_the_whole_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.mail"):
        await ConsoleEmailSender().send(EMAIL)

    [record] = [r for r in caplog.records if r.name == "app.mail"]
    assert record.levelno == logging.INFO
    logged = record.getMessage()
    assert EMAIL.to in logged
    assert EMAIL.subject in logged
    assert EMAIL.text in logged


def test_build_email_sender_follows_the_configured_backend(
    make_mail_settings: MakeSettings,
) -> None:
    assert isinstance(build_email_sender(make_mail_settings(email_backend="smtp")), SmtpEmailSender)
    assert isinstance(
        build_email_sender(make_mail_settings(email_backend="console")), ConsoleEmailSender
    )
