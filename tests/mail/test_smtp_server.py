"""The SMTP test server and its helpers, end to end with the real sender and templates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.mail import SmtpEmailSender, frontend_link, verification_email
from tests.mail.conftest import MakeSettings
from tests.mail.smtp_server import SmtpServer, extract_token, html_part, text_part


async def test_extract_token_recovers_the_token_sent_in_a_verification_mail(
    smtp_server: SmtpServer, make_mail_settings: MakeSettings
) -> None:
    settings = make_mail_settings(smtp_server)
    token = "Zx_9-a/b+c="
    link = frontend_link(settings, "verify-email", token)

    await SmtpEmailSender(settings).send(
        verification_email("bob@example.org", link, timedelta(hours=24))
    )

    [message] = await smtp_server.wait_for()
    assert extract_token(message) == token
    assert link in text_part(message)
    assert "24 hours" in html_part(message)


async def test_wait_for_fails_when_too_few_mails_arrive(smtp_server: SmtpServer) -> None:
    with pytest.raises(AssertionError, match="expected 1 mail"):
        await smtp_server.wait_for(timeout=0.05)


async def test_clear_forgets_received_mail(
    smtp_server: SmtpServer, make_mail_settings: MakeSettings
) -> None:
    sender = SmtpEmailSender(make_mail_settings(smtp_server))
    await sender.send(verification_email("a@example.org", "https://x/?token=1", timedelta(1)))
    await smtp_server.wait_for()

    smtp_server.clear()

    assert smtp_server.messages == []
