"""Sign-in with a provider from the hosted sign-in page: a flow in progress remembers where the
browser goes once signed in (`return_to`; set only for flows started on that page).

Flows in progress before this revision were started through the API, and stay what they were.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
# Follows 0013 (authorization codes, client grants, browser sessions).
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("return_to", sa.String(length=8000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_column("return_to")
