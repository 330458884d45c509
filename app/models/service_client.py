"""Registered clients: services that obtain tokens with the client-credentials grant, and the
applications users sign in to (see `app/services/admin/client_registration.py` for what each
field may hold and how the fields go together)."""

from __future__ import annotations

import uuid

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey


class ServiceClient(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "service_clients"
    __table_args__ = (
        CheckConstraint(
            "token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')",
            name="token_endpoint_auth_method",
        ),
        # A public client (`none`) has no secret; every other client has one.
        CheckConstraint(
            "(token_endpoint_auth_method = 'none' AND secret_hash IS NULL) OR "
            "(token_endpoint_auth_method <> 'none' AND secret_hash IS NOT NULL)",
            name="secret_iff_confidential",
        ),
    )

    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the secret; None for a public client, which has none.
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The server defaults are what a client registered before these fields existed is: a
    # confidential service client on the client-credentials grant.
    grant_types: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: ["client_credentials"], server_default='["client_credentials"]'
    )
    # Kept exactly as registered: redirections are checked by exact match.
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(32), default="client_secret_basic", server_default="client_secret_basic"
    )
    is_first_party: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
