"""Client registration: each client's grant types, redirect URIs, post-logout redirect URIs,
token endpoint authentication method and first-party flag; public clients have no secret.

Clients registered before this revision become what they were: confidential service clients on
the client-credentials grant (`["client_credentials"]`, no URIs, `client_secret_basic`, not
first-party).

The downgrade cannot keep a client without a secret, nor one that was not allowed the
client-credentials grant (the old schema would let it use that grant): such clients stay, but
disabled, and a public client gets an empty digest, which no secret matches.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
# Follows 0011 (second factors).
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "grant_types",
                sa.JSON(),
                server_default='["client_credentials"]',
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("redirect_uris", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.add_column(
            sa.Column("post_logout_redirect_uris", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "token_endpoint_auth_method",
                sa.String(length=32),
                server_default="client_secret_basic",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "is_first_party", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )
        batch_op.alter_column("secret_hash", existing_type=sa.String(length=255), nullable=True)
        batch_op.create_check_constraint(
            batch_op.f("ck_service_clients_token_endpoint_auth_method"),
            "token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_service_clients_secret_iff_confidential"),
            "(token_endpoint_auth_method = 'none' AND secret_hash IS NULL) OR "
            "(token_endpoint_auth_method <> 'none' AND secret_hash IS NOT NULL)",
        )


def downgrade() -> None:
    with op.batch_alter_table("service_clients", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("ck_service_clients_secret_iff_confidential"), type_="check"
        )
        batch_op.drop_constraint(
            batch_op.f("ck_service_clients_token_endpoint_auth_method"), type_="check"
        )

    clients = sa.table(
        "service_clients",
        sa.column("id", sa.Uuid()),
        sa.column("grant_types", sa.JSON()),
        sa.column("secret_hash", sa.String()),
        sa.column("is_active", sa.Boolean()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(clients.c.id, clients.c.grant_types, clients.c.secret_hash))
    for row in rows.all():
        if row.secret_hash is None or "client_credentials" not in row.grant_types:
            connection.execute(
                sa.update(clients)
                .where(clients.c.id == row.id)
                .values(is_active=False, secret_hash=row.secret_hash or "")
            )

    with op.batch_alter_table("service_clients", schema=None) as batch_op:
        batch_op.alter_column("secret_hash", existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column("is_first_party")
        batch_op.drop_column("token_endpoint_auth_method")
        batch_op.drop_column("post_logout_redirect_uris")
        batch_op.drop_column("redirect_uris")
        batch_op.drop_column("grant_types")
