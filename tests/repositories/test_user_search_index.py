"""The admin user search (`q`, a substring of email, username or full name) can be answered
from the trigram indexes of migration 0005 on PostgreSQL, instead of reading every user.

The planner prefers a sequential scan on a table this small, so the test forbids plain scans
and asks how the query the repository really sends would then be run: only indexes that
match its expressions and operators can serve it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.repositories.accounts.users import UserRepository, UserSearch


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no trigram indexes; a small embedded file scans quickly")


@pytest.mark.usefixtures("postgres_only", "app")
async def test_search_by_substring_uses_the_trigram_indexes(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM users" in statement:
            sent.append((statement, parameters))

    async with sessions() as session:
        connection = await session.connection()
        event.listen(connection.sync_connection, "before_cursor_execute", capture)
        await UserRepository(session).search(UserSearch(query="zq-rare"), limit=20)
        event.remove(connection.sync_connection, "before_cursor_execute", capture)
    [(statement, parameters)] = sent

    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
        raw = await connection.get_raw_connection()
        plan = await raw.driver_connection.fetch(f"EXPLAIN {statement}", *parameters)
        await connection.rollback()
    plan_text = "\n".join(row[0] for row in plan)

    for index in ("ix_users_email_trgm", "ix_users_username_trgm", "ix_users_full_name_trgm"):
        assert index in plan_text, plan_text
    assert "Seq Scan on users" not in plan_text, plan_text


@pytest.mark.usefixtures("postgres_only")
async def test_the_trigram_indexes_exist_after_migration(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        names = set(
            await connection.scalars(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'users'")
            )
        )
    assert {"ix_users_email_trgm", "ix_users_username_trgm", "ix_users_full_name_trgm"} <= names
