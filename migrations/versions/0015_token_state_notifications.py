"""Token-state change notifications (PostgreSQL): triggers that `NOTIFY authsvc_token_state`
whenever something a token check reads changes, so every replica's cache of those checks drops
the entry (app/services/tokens/token_state_cache.py).

A NOTIFY is sent when its transaction commits, and never if it rolls back: the cache hears of
every committed change, whoever made it (the service, the CLI, an operator's SQL), and of
nothing that did not happen. Payloads: `session:<id>` (a session ended or deleted), `user:<id>`
(an account's token version, state, profile, roles or second factor changed, or it was
deleted), `client:<client_id>` (a service client changed or one of its tokens was revoked),
`all` (a role or permission changed: it may concern anyone).

SQLite has no NOTIFY; there the cache is off (see the module), and this revision does nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 07:50:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
# Follows 0014 (browser-mode provider sign-in).
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "authsvc_token_state"

# (trigger name, table, timing/event clause, payload expression over NEW/OLD)
TRIGGERS = (
    (
        "authsvc_session_ended",
        "sessions",
        "AFTER UPDATE OF revoked_at",
        "OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL",
        "'session:' || NEW.id",
    ),
    ("authsvc_session_deleted", "sessions", "AFTER DELETE", None, "'session:' || OLD.id"),
    (
        "authsvc_user_changed",
        "users",
        "AFTER UPDATE",
        "OLD.token_version IS DISTINCT FROM NEW.token_version"
        " OR OLD.is_active IS DISTINCT FROM NEW.is_active"
        " OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser"
        " OR OLD.is_verified IS DISTINCT FROM NEW.is_verified"
        " OR OLD.mfa_enabled IS DISTINCT FROM NEW.mfa_enabled"
        " OR OLD.email IS DISTINCT FROM NEW.email"
        " OR OLD.username IS DISTINCT FROM NEW.username"
        " OR OLD.full_name IS DISTINCT FROM NEW.full_name",
        "'user:' || NEW.id",
    ),
    ("authsvc_user_deleted", "users", "AFTER DELETE", None, "'user:' || OLD.id"),
    ("authsvc_user_role_added", "user_roles", "AFTER INSERT", None, "'user:' || NEW.user_id"),
    ("authsvc_user_role_removed", "user_roles", "AFTER DELETE", None, "'user:' || OLD.user_id"),
    (
        "authsvc_role_permissions_changed",
        "role_permissions",
        "AFTER INSERT OR DELETE",
        None,
        "'all'",
    ),
    ("authsvc_role_changed", "roles", "AFTER UPDATE OR DELETE", None, "'all'"),
    ("authsvc_permission_changed", "permissions", "AFTER UPDATE OR DELETE", None, "'all'"),
    (
        "authsvc_client_changed",
        "service_clients",
        "AFTER UPDATE",
        "OLD.is_active IS DISTINCT FROM NEW.is_active OR OLD.scopes::text IS DISTINCT FROM"
        " NEW.scopes::text OR OLD.client_id IS DISTINCT FROM NEW.client_id",
        "'client:' || OLD.client_id",
    ),
    (
        "authsvc_client_deleted",
        "service_clients",
        "AFTER DELETE",
        None,
        "'client:' || OLD.client_id",
    ),
    (
        "authsvc_client_token_revoked",
        "revoked_access_tokens",
        "AFTER INSERT",
        None,
        "'client:' || NEW.client_id",
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, event, condition, payload in TRIGGERS:
        op.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('{CHANNEL}', {payload});
                RETURN NULL;
            END
            $$
            """
        )
        when = f"WHEN ({condition})" if condition else ""
        op.execute(
            f"CREATE TRIGGER {name} {event} ON {table} FOR EACH ROW {when} "
            f"EXECUTE FUNCTION {name}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _event, _condition, _payload in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
