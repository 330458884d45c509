"""Settings: environment variables, defaults, and refusal of unsafe production setups."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from app.config import Environment, Settings

PG_URL = "postgresql+asyncpg://authsvc@db:5432/authsvc"
PEM = "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----"
# A Fernet key, as production requires for AUTH_DATA_ENCRYPTION_KEY (made for the tests).
DATA_KEY = "7S-0ktwUMpHgOdWcHvPwFTQ7rcWGIzSLzmCLeh8uBH0="


def test_defaults_run_on_a_local_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.database_url.startswith("sqlite+aiosqlite:///./var/")
    assert settings.environment is Environment.development
    assert settings.should_auto_migrate is True


def test_values_come_from_auth_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_DATABASE_URL", PG_URL)
    monkeypatch.setenv("AUTH_ISSUER", "https://id.example.com")
    monkeypatch.setenv("AUTH_REDIS_URL", "redis://cache:6379/0")

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.database_url == PG_URL
    assert settings.issuer == "https://id.example.com"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.should_auto_migrate is False


def test_values_come_from_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("AUTH_ISSUER=https://from-dotenv.example\n")
    monkeypatch.delenv("AUTH_ISSUER", raising=False)

    assert Settings(_env_file=env_file).issuer == "https://from-dotenv.example"  # type: ignore[call-arg]


def test_production_refuses_sqlite_and_generated_keys() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production", jwt_keys_autogenerate=True)  # type: ignore[call-arg]

    message = str(refused.value)
    assert "SQLite" in message
    assert "AUTH_JWT_KEYS_AUTOGENERATE" in message
    assert "AUTH_EMAIL_BACKEND=console" in message
    assert "AUTH_DATA_ENCRYPTION_KEY" in message


def test_keys_are_generated_in_development_only_by_default() -> None:
    development = Settings(_env_file=None)  # type: ignore[call-arg]
    production = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        database_url=PG_URL,
        email_backend="smtp",
        data_encryption_key=DATA_KEY,
    )

    assert development.may_generate_keys is True
    assert production.may_generate_keys is False


def test_password_minimum_cannot_go_below_the_nist_floor() -> None:
    with pytest.raises(ValidationError, match="password_min_length"):
        Settings(_env_file=None, password_min_length=7)  # type: ignore[call-arg]


def test_production_accepts_postgres_with_a_configured_key() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        database_url=PG_URL,
        jwt_private_key=PEM,
        email_backend="smtp",
        data_encryption_key=DATA_KEY,
    )
    assert settings.environment is Environment.production


def test_production_sqlite_needs_explicit_opt_in() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        jwt_private_key=PEM,
        allow_sqlite_in_production=True,
        email_backend="smtp",
        data_encryption_key=DATA_KEY,
    )
    assert settings.is_sqlite


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="environment"):
        Settings(_env_file=None, environment="staging")  # type: ignore[call-arg]


ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"^(AUTH_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    settings = {f"AUTH_{name.upper()}" for name in Settings.model_fields}

    assert documented == settings


def test_env_example_copied_as_is_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AUTH_"):
            monkeypatch.delenv(name)

    from_example = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]

    assert from_example == Settings(_env_file=None)  # type: ignore[call-arg]
    assert not from_example.has_configured_signing_key


def test_the_first_party_client_must_be_a_public_client() -> None:
    with pytest.raises(ValidationError, match="AUTH_PUBLIC_CLIENTS"):
        Settings(_env_file=None, public_clients=["mobile"])  # type: ignore[call-arg]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, public_clients=["mobile", "web"], first_party_client_id="web"
    )
    assert settings.public_clients == ["mobile", "web"]


@pytest.mark.parametrize("client_id", ["", " web", "x" * 65])
def test_a_public_client_id_that_no_token_could_carry_is_refused(client_id: str) -> None:
    with pytest.raises(ValidationError, match="AUTH_PUBLIC_CLIENTS"):
        Settings(_env_file=None, public_clients=["authsvc-web", client_id])  # type: ignore[call-arg]


def test_production_with_the_keys_in_the_database_needs_the_key_encryption_key() -> None:
    production = {
        "environment": "production",
        "database_url": PG_URL,
        "email_backend": "smtp",
        "key_store": "database",
        "data_encryption_key": Fernet.generate_key().decode(),
    }
    with pytest.raises(ValidationError, match="AUTH_KEY_ENCRYPTION_KEY"):
        Settings(_env_file=None, **production)  # type: ignore[arg-type]

    key = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, key_encryption_key=key, **production)  # type: ignore[arg-type]
    assert settings.key_store == "database"
    # The directory store never reads it, so it is not required there.
    Settings(_env_file=None, **{**production, "key_store": "directory"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ahead", "max_age", "interval", "accepted"),
    [(600, 300, 5, True), (305, 300, 5, True), (304, 300, 5, False), (300, 300, 0.5, False)],
)
def test_a_key_is_published_longer_ahead_than_a_jwks_may_be_cached(
    ahead: int, max_age: int, interval: float, accepted: bool
) -> None:
    values = {
        "key_publish_ahead_seconds": ahead,
        "jwks_max_age_seconds": max_age,
        "key_check_interval_seconds": interval,
    }
    if accepted:
        Settings(_env_file=None, **values)  # type: ignore[arg-type]
        return
    with pytest.raises(ValidationError, match="AUTH_KEY_PUBLISH_AHEAD_SECONDS"):
        Settings(_env_file=None, **values)  # type: ignore[arg-type]
