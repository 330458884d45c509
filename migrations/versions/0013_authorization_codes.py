"""The OpenID Provider's state: authorization codes (digests), the scopes each user granted each
client, and browser sessions (a session with the digest of its cookie's secret, and the browser
session each code-issued session came from).

Sessions opened before this revision are token sessions, as they were: no browser secret, no
browser session.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
# Follows 0012 (client registration).
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("browser_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("browser_session_id", sa.Uuid(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_sessions_browser_secret_hash"), ["browser_secret_hash"]
        )
        batch_op.create_index(
            batch_op.f("ix_sessions_browser_session_id"), ["browser_session_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_sessions_browser_session_id_sessions"),
            "sessions",
            ["browser_session_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "authorization_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("browser_session_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scope", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_session_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["service_clients.client_id"],
            name=op.f("fk_authorization_codes_client_id_service_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_authorization_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["browser_session_id"],
            ["sessions.id"],
            name=op.f("fk_authorization_codes_browser_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issued_session_id"],
            ["sessions.id"],
            name=op.f("fk_authorization_codes_issued_session_id_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorization_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_authorization_codes_code_hash")),
    )
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        for column in ("client_id", "user_id", "browser_session_id", "expires_at"):
            batch_op.create_index(
                batch_op.f(f"ix_authorization_codes_{column}"), [column], unique=False
            )

    op.create_table(
        "client_grants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["service_clients.client_id"],
            name=op.f("fk_client_grants_client_id_service_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_client_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_grants")),
        sa.UniqueConstraint(
            "user_id", "client_id", name=op.f("uq_client_grants_user_id_client_id")
        ),
    )
    with op.batch_alter_table("client_grants", schema=None) as batch_op:
        for column in ("client_id", "user_id"):
            batch_op.create_index(batch_op.f(f"ix_client_grants_{column}"), [column], unique=False)


def downgrade() -> None:
    op.drop_table("client_grants")
    op.drop_table("authorization_codes")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_sessions_browser_session_id_sessions"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_sessions_browser_session_id"))
        batch_op.drop_constraint(batch_op.f("uq_sessions_browser_secret_hash"), type_="unique")
        batch_op.drop_column("browser_session_id")
        batch_op.drop_column("browser_secret_hash")
