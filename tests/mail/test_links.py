from __future__ import annotations

import pytest

from app.mail import frontend_link
from tests.mail.conftest import MakeSettings


@pytest.mark.parametrize(
    ("frontend_url", "path", "expected"),
    [
        ("https://app.example.com", "verify-email", "https://app.example.com/verify-email"),
        ("https://app.example.com/", "/verify-email", "https://app.example.com/verify-email"),
        ("https://example.com/app/", "/reset", "https://example.com/app/reset"),
    ],
)
def test_frontend_link_joins_the_configured_url_and_the_path(
    make_mail_settings: MakeSettings, frontend_url: str, path: str, expected: str
) -> None:
    settings = make_mail_settings(frontend_url=frontend_url)

    assert frontend_link(settings, path, "abc") == f"{expected}?token=abc"


def test_frontend_link_percent_encodes_the_token(make_mail_settings: MakeSettings) -> None:
    link = frontend_link(make_mail_settings(), "verify", "a/b+c=d&e f")

    assert link == "https://app.example.com/verify?token=a%2Fb%2Bc%3Dd%26e%20f"
