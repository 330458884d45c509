"""Programmatic access to the Alembic migrations: upgrade, and the revision the code expects."""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from app.config import PROJECT_ROOT
from app.db import ensure_sqlite_directory

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(database_url: str) -> Config:
    """An Alembic `Config` bound to `database_url`, leaving logging to the caller."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    config.attributes["skip_logging_config"] = True
    return config


def upgrade_to_head(database_url: str) -> None:
    """Run `alembic upgrade head`. Blocking (it drives its own event loop): call off the loop."""
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), "head")


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision in migrations/versions: the schema this code expects."""
    script = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    return script.get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the connected database is at (None when it was never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()
