"""Built-in permissions and the `admin` role; audit events searchable by actor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:00:00+00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here on purpose: a migration must insert the same rows whatever the code says later.
# Fixed ids let the downgrade remove exactly what this upgrade inserted.
PERMISSIONS = [
    ("01a20806-c646-720e-89e9-0767bddd9fa4", "users:read", "List and read user accounts."),
    ("01a20806-c646-720e-89e9-076815245234", "users:write", "Create, change and delete users."),
    ("01a20806-c646-720e-89e9-076924a3c01d", "roles:read", "List roles and permissions."),
    ("01a20806-c646-720e-89e9-076ac103d405", "roles:write", "Change roles and permissions."),
    ("01a20806-c646-720e-89e9-076bd6e8c824", "clients:write", "Manage service clients."),
    ("01a20806-c646-720e-89e9-076c6c979f87", "audit:read", "Read the audit trail."),
]
ADMIN_ROLE_ID = "01a20806-c646-720e-89e9-076d2506624c"

permissions = sa.table(
    "permissions",
    sa.column("id", sa.Uuid()),
    sa.column("codename", sa.String()),
    sa.column("description", sa.Text()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
roles = sa.table(
    "roles",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("description", sa.Text()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
role_permissions = sa.table(
    "role_permissions", sa.column("role_id", sa.Uuid()), sa.column("permission_id", sa.Uuid())
)
user_roles = sa.table(
    "user_roles", sa.column("user_id", sa.Uuid()), sa.column("role_id", sa.Uuid())
)


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_actor_id_id", ["actor_id", "id"], unique=False)

    now = datetime.now(UTC)
    op.bulk_insert(
        permissions,
        [
            {"id": uuid.UUID(id_), "codename": codename, "description": text, "created_at": now}
            for id_, codename, text in PERMISSIONS
        ],
    )
    op.bulk_insert(
        roles,
        [
            {
                "id": uuid.UUID(ADMIN_ROLE_ID),
                "name": "admin",
                "description": "Administrators: every built-in permission.",
                "created_at": now,
            }
        ],
    )
    op.bulk_insert(
        role_permissions,
        [
            {"role_id": uuid.UUID(ADMIN_ROLE_ID), "permission_id": uuid.UUID(id_)}
            for id_, _, _ in PERMISSIONS
        ],
    )


def downgrade() -> None:
    ids = [uuid.UUID(id_) for id_, _, _ in PERMISSIONS]
    admin_id = uuid.UUID(ADMIN_ROLE_ID)
    # Explicit deletes rather than ON DELETE CASCADE: SQLite enforces it only when asked.
    op.execute(user_roles.delete().where(user_roles.c.role_id == admin_id))
    op.execute(role_permissions.delete().where(role_permissions.c.permission_id.in_(ids)))
    op.execute(role_permissions.delete().where(role_permissions.c.role_id == admin_id))
    op.execute(roles.delete().where(roles.c.id == admin_id))
    op.execute(permissions.delete().where(permissions.c.id.in_(ids)))
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_actor_id_id")
