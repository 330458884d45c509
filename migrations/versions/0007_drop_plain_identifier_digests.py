"""Audit: drop the plain SHA-256 digests of failed sign-in identifiers.

`login.failed` events used to keep `identifier_digest`, an unsalted SHA-256 prefix of the name
typed, which anyone holding the table and a list of addresses can reverse. New events keep a
keyed HMAC (`identifier_hmac`) instead; the old values cannot be converted (the names are not
known), so they are removed. The rest of each event stays.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 20:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE audit_events SET details = (details::jsonb - 'identifier_digest')::json "
            "WHERE type = 'login.failed' AND (details::jsonb) ? 'identifier_digest'"
        )
    else:
        op.execute(
            "UPDATE audit_events SET details = json_remove(details, '$.identifier_digest') "
            "WHERE type = 'login.failed' "
            "AND json_type(details, '$.identifier_digest') IS NOT NULL"
        )


def downgrade() -> None:
    # Nothing to restore: the schema is unchanged and the removed digests are gone for good
    # (which was the point). Code of the previous revision reads events without them.
    pass
