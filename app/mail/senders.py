"""Transports that hand a rendered mail to the outside world: the log or an SMTP relay."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

import aiosmtplib

from app.config import Settings
from app.mail.message import OutgoingEmail

# One logger for the whole package, so operators can route (or silence) mail output by name.
logger = logging.getLogger("app.mail")


class EmailSender(Protocol):
    async def send(self, email: OutgoingEmail) -> None:
        """Hand `email` over for delivery; raise if that fails."""


class ConsoleEmailSender:
    """Writes every mail, link included, to the log. For development only."""

    async def send(self, email: OutgoingEmail) -> None:
        logger.info("email to %s\nSubject: %s\n\n%s", email.to, email.subject, email.text)


class MailConfigurationError(ValueError):
    """The mail settings contradict each other: the service (and the CLI) cannot start."""


class SmtpEmailSender:
    """Sends through an SMTP relay with aiosmtplib, one connection per mail."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_starttls and settings.smtp_use_tls:
            raise MailConfigurationError(
                "AUTH_SMTP_STARTTLS and AUTH_SMTP_USE_TLS are mutually exclusive"
            )
        self._from = settings.email_from
        # Message-IDs take the sender's domain; the default would look up this host's FQDN.
        self._message_id_domain = parseaddr(settings.email_from)[1].rpartition("@")[2]
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._username = settings.smtp_username
        self._password = settings.smtp_password
        self._start_tls = settings.smtp_starttls
        self._use_tls = settings.smtp_use_tls
        self._timeout = settings.smtp_timeout_seconds

    def build_message(self, email: OutgoingEmail) -> EmailMessage:
        """The MIME message sent for `email`: multipart/alternative, text first, then HTML."""
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._message_id_domain or "localhost")
        # RFC 3834: tells vacation responders not to answer.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message

    async def send(self, email: OutgoingEmail) -> None:
        """Connect, send, say QUIT. A failed or cancelled send drops the connection at once:
        `aiosmtplib.send` would first wait (up to the timeout) for a QUIT that a stuck server
        never answers, which would hold up the outbox dispatcher's shutdown."""
        password = self._password.get_secret_value() if self._password is not None else None
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=password,
            start_tls=self._start_tls,
            use_tls=self._use_tls,
            timeout=self._timeout,
        )
        try:
            await client.connect()
            await client.send_message(self.build_message(email))
        except BaseException:
            client.close()
            raise
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            pass  # the mail was accepted; a failed goodbye changes nothing
        finally:
            client.close()


def build_email_sender(settings: Settings) -> EmailSender:
    """The sender `AUTH_EMAIL_BACKEND` selects."""
    if settings.email_backend == "smtp":
        return SmtpEmailSender(settings)
    return ConsoleEmailSender()
