"""Hardening settings: parsing, and refusal of unsafe values in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings

PG_URL = "postgresql+asyncpg://authsvc@db:5432/authsvc"
PEM = "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----"
# A Fernet key, as production requires for AUTH_DATA_ENCRYPTION_KEY (made for the tests).
DATA_KEY = "7S-0ktwUMpHgOdWcHvPwFTQ7rcWGIzSLzmCLeh8uBH0="


def production(**values: object) -> Settings:
    safe: dict[str, object] = {
        "environment": "production",
        "database_url": PG_URL,
        "jwt_private_key": PEM,
        "email_backend": "smtp",
        "public_url": "https://auth.example.com",
        "issuer": "https://auth.example.com",
        "data_encryption_key": DATA_KEY,
        **values,
    }
    return Settings(_env_file=None, **safe)  # type: ignore[call-arg]


def test_defaults_are_no_cors_no_proxies_and_64_kib() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.cors_origins == []
    assert settings.trusted_proxies == []
    assert settings.max_body_bytes == 65536


def test_lists_come_from_json_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_CORS_ORIGINS", '["https://app.example.com/"]')
    monkeypatch.setenv("AUTH_TRUSTED_PROXIES", '["10.0.0.1/8", "192.0.2.4", "2001:db8::/32"]')

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.cors_origins == ["https://app.example.com"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.4/32", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("trusted_proxies", ["10.0.0.300"], "AUTH_TRUSTED_PROXIES"),
        ("cors_origins", ["app.example.com"], "AUTH_CORS_ORIGINS"),
        ("cors_origins", ["https://app.example.com/login"], "AUTH_CORS_ORIGINS"),
    ],
)
def test_malformed_entries_are_refused(field: str, value: list[str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(_env_file=None, **{field: value})  # type: ignore[arg-type]


def test_safe_production_settings_are_accepted() -> None:
    settings = production(cors_origins=["https://app.example.com"], trusted_proxies=["10.0.0.0/8"])

    assert settings.cors_origins == ["https://app.example.com"]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"cors_origins": ["*"]}, "AUTH_CORS_ORIGINS"),
        ({"trusted_proxies": ["0.0.0.0/0"]}, "AUTH_TRUSTED_PROXIES"),
        ({"trusted_proxies": ["10.0.0.0/8", "::/0"]}, "AUTH_TRUSTED_PROXIES"),
        ({"public_url": "http://auth.example.com"}, "AUTH_PUBLIC_URL"),
        ({"issuer": "http://auth.example.com"}, "AUTH_ISSUER"),
        ({"public_url": "ftp://auth.example.com"}, "AUTH_PUBLIC_URL"),
    ],
)
def test_production_refuses_unsafe_hardening(values: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match="refusing to start in production") as refused:
        production(**values)

    assert named in str(refused.value)


def test_development_allows_what_production_refuses() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        cors_origins=["*"],
        trusted_proxies=["0.0.0.0/0"],
        public_url="http://auth.example.com",
    )

    assert settings.cors_origins == ["*"]


@pytest.mark.parametrize(
    "url", ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"]
)
def test_production_allows_plain_http_on_this_machine(url: str) -> None:
    """The docker-compose stack runs in production mode on a laptop."""
    assert production(public_url=url, issuer=url).public_url == url
