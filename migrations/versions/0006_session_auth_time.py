"""Recent authentication: sessions remember when their user last proved a credential, and a
pending provider link remembers the session and token version that started it.

Existing sessions get their creation time (the sign-in that opened them). Link flows already
in progress have no session to check against: the service refuses to complete them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:19:12.574467+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE sessions SET authenticated_at = created_at")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column(
            "authenticated_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )

    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_session_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("link_token_version", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_oauth_states_link_session_id_sessions"),
            "sessions",
            ["link_session_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_oauth_states_link_session_id_sessions"), type_="foreignkey"
        )
        batch_op.drop_column("link_token_version")
        batch_op.drop_column("link_session_id")

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("authenticated_at")
