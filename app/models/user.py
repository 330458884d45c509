"""The user account."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Timestamps, UUIDPrimaryKey
from app.models.rbac import user_roles

if TYPE_CHECKING:
    from app.models.rbac import Role


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"
    __table_args__ = (
        # Emails and usernames are stored lower-cased; the checks make the unique indexes
        # case-insensitive even for rows written outside the service.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("username = lower(username)", name="username_lowercase"),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    # NULL for accounts that only sign in through an external provider.
    hashed_password: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_superuser: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Bumped to invalidate every access token issued before (logout-all, password change, ...).
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    last_login_at: Mapped[datetime | None]
    # Whether the user has a confirmed second factor: kept with the factor in one transaction,
    # so every sign-in path, step-up check and admin filter reads it without a join.
    mfa_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin")

    def __repr__(self) -> str:
        return f"User(id={self.id!s}, email={self.email!r})"
