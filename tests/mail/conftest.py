from __future__ import annotations

from collections.abc import Callable

import pytest

from app.config import Settings
from tests.mail.smtp_server import HOST, SmtpServer, smtp_server  # noqa: F401

MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_mail_settings() -> MakeSettings:
    """Settings for mail tests, from arguments only (no `.env`), SMTP aimed at 127.0.0.1."""

    def make(server: SmtpServer | None = None, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "email_backend": "smtp",
            "email_from": "authsvc <no-reply@auth.example.com>",
            "smtp_host": HOST,
            "smtp_timeout_seconds": 5.0,
            "frontend_url": "https://app.example.com",
        }
        if server is not None:
            values["smtp_port"] = server.port
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return make
