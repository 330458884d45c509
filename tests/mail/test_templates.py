from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from app.mail import (
    OutgoingEmail,
    email_changed_notice,
    password_reset_email,
    provider_linked_notice,
    verification_email,
)
from app.mail.templates import humanize_duration

LINK = "https://app.example.com/verify?token=abc-123&lang=en"
LinkEmail = Callable[[str, str, timedelta], OutgoingEmail]


@pytest.mark.parametrize(
    ("build", "subject"),
    [
        (verification_email, "Verify your email address"),
        (password_reset_email, "Reset your password"),
    ],
)
def test_link_emails_carry_the_link_and_its_validity_in_both_parts(
    build: LinkEmail, subject: str
) -> None:
    email = build("alice@example.org", LINK, timedelta(minutes=30))

    assert email.to == "alice@example.org"
    assert email.subject == subject
    assert LINK in email.text
    assert "30 minutes" in email.text
    assert 'href="https://app.example.com/verify?token=abc-123&amp;lang=en"' in email.html
    assert "30 minutes" in email.html


@pytest.mark.parametrize("build", [verification_email, password_reset_email])
def test_link_emails_leave_no_placeholder_unfilled(build: LinkEmail) -> None:
    email = build("alice@example.org", LINK, timedelta(hours=24))

    assert "$" not in email.text
    assert "$" not in email.html


def test_email_changed_notice_names_the_new_address_and_what_to_do() -> None:
    email = email_changed_notice("old@example.org", "new@example.net")

    assert email.to == "old@example.org"
    assert email.subject == "Your email address was changed"
    assert "new@example.net" in email.text
    assert "new@example.net" in email.html
    assert "contact support" in email.text


def test_email_changed_notice_escapes_the_address_in_html() -> None:
    hostile = '"<script>alert(1)</script>"@x.example'

    email = email_changed_notice("old@example.org", hostile)

    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert hostile in email.text


def test_provider_linked_notice_names_the_provider_and_escapes_the_identity() -> None:
    hostile = '"<img src=x>"@evil.example'

    email = provider_linked_notice("owner@example.org", "github", hostile)

    assert email.to == "owner@example.org"
    assert email.subject == "github was linked to your account"
    assert "github" in email.text
    assert hostile in email.text
    assert "<img" not in email.html
    assert "&lt;img src=x&gt;" in email.html
    assert "$" not in email.text + email.html


def test_link_emails_escape_a_hostile_link_in_html() -> None:
    email = verification_email("a@example.org", 'https://x.example/?token="><b>', timedelta(1))

    assert '"><b>' not in email.html
    assert "&quot;&gt;&lt;b&gt;" in email.html


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (timedelta(seconds=45), "45 seconds"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=90), "1 minute"),
        (timedelta(minutes=30), "30 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(minutes=90), "1 hour and 30 minutes"),
        (timedelta(hours=24), "24 hours"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(days=2), "2 days"),
        (timedelta(days=7), "7 days"),
    ],
)
def test_humanize_duration(duration: timedelta, expected: str) -> None:
    assert humanize_duration(duration) == expected
