"""Admin user search: trigram indexes for substring matches on PostgreSQL.

`GET /admin/users?q=` matches a substring of the email, the username or the full name
(`LIKE '%q%'`), which a B-tree cannot serve; without these, a rare needle reads the whole
table. SQLite (single node, small) keeps scanning. The indexes live in migrations only (the
models cannot express them portably); migrations/env.py keeps autogenerate from dropping them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:40:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# index name -> indexed expression; the expressions are the ones UserRepository.search uses.
TRIGRAM_INDEXES = {
    "ix_users_email_trgm": "email",
    "ix_users_username_trgm": "username",
    "ix_users_full_name_trgm": "lower(full_name)",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON users USING gin (({expression}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
