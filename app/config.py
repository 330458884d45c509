"""Service configuration: one `Settings` object read from `AUTH_*` variables and `.env`."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    """Every setting of the service. Field names map to `AUTH_<NAME>` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="AUTH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- runtime ---
    environment: Environment = Environment.development
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"

    # --- database ---
    database_url: str = "sqlite+aiosqlite:///./var/authsvc.db"
    auto_migrate: bool | None = Field(
        default=None,
        description="Run `alembic upgrade head` at start-up. Default: only for SQLite.",
    )
    allow_sqlite_in_production: bool = False
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    db_echo: bool = False

    # --- identity of this issuer ---
    issuer: str = "http://localhost:8000"
    public_url: str = "http://localhost:8000"
    frontend_url: str = "http://localhost:3000"

    # --- signing keys ---
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    keys_dir: Path = Path("var/keys")

    # --- cache / shared counters ---
    redis_url: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def has_configured_signing_key(self) -> bool:
        return self.jwt_private_key is not None or self.jwt_private_key_file is not None

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment is not Environment.production:
            return self
        problems: list[str] = []
        if self.is_sqlite and not self.allow_sqlite_in_production:
            problems.append(
                "AUTH_DATABASE_URL points at SQLite; use PostgreSQL or set "
                "AUTH_ALLOW_SQLITE_IN_PRODUCTION=true"
            )
        if not self.has_configured_signing_key:
            problems.append(
                "no signing key configured; set AUTH_JWT_PRIVATE_KEY or AUTH_JWT_PRIVATE_KEY_FILE "
                "(generated keys are for development only)"
            )
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build their own `Settings` instead."""
    return Settings()
