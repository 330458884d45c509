"""Who may do what: the built-in permissions, the acting admin, and the rules on granting.

Two rules keep administration from becoming a way up:
- nobody grants more than they hold: only a superuser makes superusers or hands out (through
  roles) permissions the actor does not hold;
- nobody manages an account more powerful than their own: changing, ending the sessions of or
  deleting a user needs every permission that user holds, and a superuser's account needs a
  superuser. Otherwise an admin could take over a stronger account (change its email, then
  reset its password) and inherit its power.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, PermissionDenied
from app.models import User
from app.repositories import PermissionRepository, UserRepository


class BuiltinPermission(StrEnum):
    """The built-in permissions, seeded by migration 0003 and held by the `admin` role."""

    users_read = "users:read"
    users_write = "users:write"
    roles_read = "roles:read"
    roles_write = "roles:write"
    clients_write = "clients:write"
    audit_read = "audit:read"


BUILTIN_PERMISSIONS = frozenset(BuiltinPermission)
ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an administrative action, and the permissions they hold right now."""

    id: uuid.UUID | None  # the user; None for a service client or the command line
    is_superuser: bool
    permissions: frozenset[str]
    client_id: str | None = None  # a service client acting with its own token
    # How the acting user signed in, for operations that need a step-up (their access token's
    # claims; empty for service clients and the command line) and whether they have a second
    # factor to step up with.
    claims: Mapping[str, Any] = field(default_factory=dict)
    has_second_factor: bool = False

    def lacks(self, codenames: Iterable[str]) -> set[str]:
        """The permissions among `codenames` the actor does not hold (none for superusers)."""
        return set() if self.is_superuser else set(codenames) - self.permissions


# The command line runs with the machine's authority: whoever can run it can read the
# database anyway.
OPERATOR = Actor(id=None, is_superuser=True, permissions=frozenset())


class MissingPermission(PermissionDenied):
    def __init__(self, missing: Collection[str]) -> None:
        super().__init__(f"This requires the permission {_listing(missing)}.")
        self.missing = tuple(sorted(missing))


class CannotGrant(PermissionDenied):
    def __init__(self, missing: Collection[str]) -> None:
        super().__init__(
            f"You cannot grant {_listing(missing)}: only a superuser grants permissions "
            "they do not hold."
        )


class SuperuserRequired(PermissionDenied):
    default_detail = "Only a superuser can do this."


class OutrankedBy(PermissionDenied):
    default_detail = (
        "This account holds permissions you lack; only someone holding all of them can change it."
    )


class LastSuperuser(Conflict):
    default_detail = "This would leave no active superuser; make another user superuser first."


def _listing(codenames: Collection[str]) -> str:
    return ", ".join(sorted(codenames))


def require(actor: Actor, codenames: Iterable[str]) -> None:
    """Refuse unless the actor holds every one of `codenames`."""
    missing = actor.lacks(codenames)
    if missing:
        raise MissingPermission(missing)


def require_grantable(actor: Actor, codenames: Iterable[str]) -> None:
    """Refuse to hand out permissions the actor does not hold."""
    missing = actor.lacks(codenames)
    if missing:
        raise CannotGrant(missing)


def require_superuser(actor: Actor, detail: str | None = None) -> None:
    if not actor.is_superuser:
        raise SuperuserRequired(detail)


class AccountGuard:
    """The checks that need the database: what a target holds, who else is superuser."""

    def __init__(self, session: AsyncSession) -> None:
        self.permissions = PermissionRepository(session)
        self.users = UserRepository(session)

    async def require_can_manage(self, actor: Actor, targets: Iterable[User]) -> None:
        """Refuse if any target is a superuser (for a non-superuser actor) or holds
        permissions the actor lacks."""
        if actor.is_superuser:
            return
        targets = list(targets)
        if any(user.is_superuser for user in targets):
            raise SuperuserRequired("Only a superuser can change a superuser's account.")
        held = await self.permissions.codenames_for_users([user.id for user in targets])
        if actor.lacks(held):
            raise OutrankedBy

    async def lock_superusers(self) -> None:
        """Lock the active superusers before locking any account a change may demote: every
        such change takes the locks in the same order, so none deadlocks with another."""
        await self.users.lock_active_superuser_ids()

    async def require_superuser_remains(self, losing: Iterable[uuid.UUID]) -> None:
        """Refuse a change that takes superuser power from the last active superusers.

        The active superusers are locked (`FOR UPDATE` on PostgreSQL) before counting, so two
        superusers demoting each other at once cannot both succeed.
        """
        superusers = await self.users.lock_active_superuser_ids()
        losing = set(losing)
        if superusers & losing and not superusers - losing:
            raise LastSuperuser
