"""User administration: what the admin API and the command line do to other people's accounts.

Every method checks the actor's permissions itself (the HTTP layer checks them too), so any
entry point, the CLI included, is held to the same rules. See `authorization` for the rules on
granting and on managing stronger accounts.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound, Unprocessable, user_conflict
from app.identifiers import normalize_email, normalize_username
from app.mail import mfa_disabled_notice, password_changed_notice
from app.models import ActionPurpose, Role, User
from app.repositories import (
    Page,
    PermissionRepository,
    RoleRepository,
    SignInSessionRepository,
    UniqueViolation,
    UserRepository,
)
from app.repositories.accounts.users import UserSearch as UserSearch  # the filter routes build
from app.services.accounts.action_tokens import ActionTokens
from app.services.accounts.second_factors import SecondFactors
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.authorization import (
    AccountGuard,
    Actor,
    BuiltinPermission,
    require,
    require_grantable,
    require_superuser,
)
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import unit_of_work
from app.services.tokens.recent_authentication import RecentAuthentication

READ = (BuiltinPermission.users_read,)
WRITE = (BuiltinPermission.users_write,)


class BulkAction(StrEnum):
    activate = "activate"
    deactivate = "deactivate"
    delete = "delete"


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    password: str | None = None
    username: str | None = None
    full_name: str | None = None
    is_active: bool = True
    is_verified: bool = False
    is_superuser: bool = False
    roles: Sequence[str] = ()


class PasswordRequired(InvalidInput):
    default_detail = "There is no user with this email; give a password to create one."


class UnknownRoles(Unprocessable):
    def __init__(self, names: Collection[str]) -> None:
        super().__init__(f"No such role: {', '.join(sorted(names))}.")


class UserAdminService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.users = UserRepository(session)
        self.roles = RoleRepository(session)
        self.permissions = PermissionRepository(session)
        self.session_rows = SignInSessionRepository(session)
        self.action_tokens = ActionTokens(session)
        self.guard = AccountGuard(session)
        self.audit = AuditTrail(session)
        self.second_factors = SecondFactors(session, context.data_encryptor)
        self.recent_authentication = RecentAuthentication(
            context.settings.reauth_max_age_seconds, context.clock
        )

    # --- read ------------------------------------------------------------------------------

    async def list_users(
        self, actor: Actor, filters: UserSearch, *, limit: int, cursor: str | None = None
    ) -> Page[User]:
        """A page of users in creation order, filtered (`UserSearch`)."""
        require(actor, READ)
        return await self.users.search(filters, limit=limit, cursor=cursor)

    async def get_user(self, actor: Actor, user_id: uuid.UUID) -> User:
        require(actor, READ)
        user = await self.users.get_by_id(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    # --- create ----------------------------------------------------------------------------

    async def create_user(self, actor: Actor, new: NewUser, *, caller: Caller) -> User:
        """Create an account with chosen flags and roles; without a password the user signs
        in after a password reset (or through a linked provider)."""
        require(actor, WRITE)
        if new.is_superuser:
            require_superuser(actor, "Only a superuser can create superusers.")
        email = normalize_email(new.email)
        username = normalize_username(new.username) if new.username else None
        hashed = None
        if new.password is not None:
            self.policy.check(new.password, email=email, username=username)
            hashed = await self.hasher.hash(new.password)
        try:
            async with unit_of_work(self.session):
                roles = await self._grantable_roles(actor, new.roles, already_held=())
                user = await self.users.create(
                    email=email,
                    username=username,
                    full_name=new.full_name,
                    hashed_password=hashed,
                    is_active=new.is_active,
                    is_verified=new.is_verified,
                    is_superuser=new.is_superuser,
                    roles=roles,
                )
                await self.audit.record_admin(
                    AuditEventType.user_created,
                    actor,
                    caller=caller,
                    user_ids=[user.id],
                    roles=sorted(role.name for role in roles),
                    is_superuser=new.is_superuser,
                )
        except UniqueViolation as violation:
            raise user_conflict(violation.field) from None
        return user

    async def ensure_superuser(
        self, actor: Actor, *, email: str, password: str | None, caller: Caller
    ) -> tuple[User, bool]:
        """Make `email` an active superuser: promote the account if it exists (its password
        untouched), else create it, verified, with `password`. True when created."""
        require_superuser(actor)
        existing = await self.users.get_by_email(email)
        if existing is None:
            if password is None:
                raise PasswordRequired
            new = NewUser(email=email, password=password, is_verified=True, is_superuser=True)
            return await self.create_user(actor, new, caller=caller), True
        async with unit_of_work(self.session):
            user = await self._lock(existing.id)
            if not (user.is_superuser and user.is_active):
                await self._apply(actor, user, {"is_superuser": True, "is_active": True}, caller)
        return user, False

    # --- change ----------------------------------------------------------------------------

    async def update_user(
        self, actor: Actor, user_id: uuid.UUID, changes: dict[str, object], *, caller: Caller
    ) -> User:
        """Change profile fields, flags or the password of an account.

        Deactivation and a new password end every session and retire outstanding access
        tokens; taking superuser power away is refused when it would leave no active superuser.
        """
        require(actor, WRITE)
        password = changes.pop("password", None)
        hashed = None
        if password is not None:
            hashed = await self._hash_for(user_id, str(password), changes)
        try:
            async with unit_of_work(self.session):
                if changes.get("is_superuser") is False or changes.get("is_active") is False:
                    await self.guard.lock_superusers()
                user = await self._lock(user_id)
                await self.guard.require_can_manage(actor, [user])
                if hashed is not None:
                    changes["hashed_password"] = hashed
                await self._apply(actor, user, changes, caller)
                if hashed is not None:
                    await self.outbox.enqueue(self.session, password_changed_notice(user.email))
        except UniqueViolation as violation:
            raise user_conflict(violation.field) from None
        return user

    async def set_roles(
        self, actor: Actor, user_id: uuid.UUID, role_names: Sequence[str], *, caller: Caller
    ) -> User:
        """Replace the user's roles. Added roles may carry only permissions the actor holds.

        Removing a role retires the user's outstanding access tokens (their `roles` claim is
        stale); their sessions go on, so clients refresh into tokens with the new roles.
        """
        require(actor, WRITE)
        # Handing out power is the admin's most sensitive act: with a second factor, only a
        # session that recently passed it may (a stolen aal1 token cannot).
        self.recent_authentication.require_step_up(
            actor.claims, has_second_factor=actor.has_second_factor
        )
        async with unit_of_work(self.session):
            user = await self._lock(user_id)
            await self.guard.require_can_manage(actor, [user])
            before = {role.name for role in user.roles}
            roles = await self._grantable_roles(actor, role_names, already_held=before)
            after = {role.name for role in roles}
            if after != before:
                user.roles = roles
                if before - after:
                    user.token_version += 1
                await self.users.update(user)
                await self.audit.record_admin(
                    AuditEventType.user_roles_changed,
                    actor,
                    caller=caller,
                    user_ids=[user.id],
                    added=sorted(after - before),
                    removed=sorted(before - after),
                )
        return user

    async def reset_mfa(self, actor: Actor, user_id: uuid.UUID, *, caller: Caller) -> None:
        """Turn the user's two-step sign-in off, for a user who lost their authenticator and
        their recovery codes: the factor and the codes go, and the owner is mailed. Only an
        admin who may manage the account (the stronger-account rule) may."""
        require(actor, WRITE)
        async with unit_of_work(self.session):
            user = await self._lock(user_id)
            await self.guard.require_can_manage(actor, [user])
            if not await self.second_factors.remove_all(user.id):
                raise NotFound("This user has no second factor.")
            was_enabled, user.mfa_enabled = user.mfa_enabled, False
            await self.audit.record_admin(
                AuditEventType.mfa_reset, actor, caller=caller, user_ids=[user.id]
            )
            if was_enabled:
                await self.outbox.enqueue(
                    self.session, mfa_disabled_notice(user.email, by_administrator=True)
                )

    async def end_sessions(self, actor: Actor, user_id: uuid.UUID, *, caller: Caller) -> int:
        """End every session of the user and retire their access tokens at once."""
        require(actor, WRITE)
        async with unit_of_work(self.session):
            user = await self._lock(user_id)
            await self.guard.require_can_manage(actor, [user])
            ended = await self._sign_out_everywhere(user, "ended_by_admin")
            await self.audit.record_admin(
                AuditEventType.user_sessions_ended,
                actor,
                caller=caller,
                user_ids=[user.id],
                sessions_ended=ended,
            )
        return ended

    async def delete_user(self, actor: Actor, user_id: uuid.UUID, *, caller: Caller) -> None:
        """Delete the account with its sessions, tokens and links (the rows cascade)."""
        require(actor, WRITE)
        async with unit_of_work(self.session):
            await self.guard.lock_superusers()
            user = await self._lock(user_id)
            await self.guard.require_can_manage(actor, [user])
            await self.guard.require_superuser_remains([user.id])
            await self.users.delete(user.id)
            await self.audit.record_admin(
                AuditEventType.user_deleted,
                actor,
                caller=caller,
                user_ids=[user.id],
                email=user.email,
            )

    async def bulk(
        self, actor: Actor, ids: Collection[uuid.UUID], action: BulkAction, *, caller: Caller
    ) -> int:
        """Activate, deactivate or delete many users with one statement; the number changed.

        Users already in the wanted state, and ids that match nobody, are not counted.
        """
        require(actor, WRITE)
        async with unit_of_work(self.session):
            if action is not BulkAction.activate:
                await self.guard.lock_superusers()
            targets = await self.users.list_by(User.id.in_(list(ids)))
            await self.guard.require_can_manage(actor, targets)
            ids = [user.id for user in targets]
            if action is not BulkAction.activate:
                await self.guard.require_superuser_remains(ids)
            if action is BulkAction.activate:
                changed = await self.users.update_many(
                    ids, User.is_active.is_(False), is_active=True
                )
                event = AuditEventType.user_activated
            elif action is BulkAction.deactivate:
                changed = await self.users.update_many(
                    ids,
                    User.is_active.is_(True),
                    is_active=False,
                    token_version=User.token_version + 1,
                )
                await self.session_rows.revoke_all_for_users(changed, self.clock(), "deactivated")
                event = AuditEventType.user_deactivated
            else:
                changed = await self.users.delete_many(ids)
                event = AuditEventType.user_deleted
            await self.audit.record_admin(event, actor, caller=caller, user_ids=changed, bulk=True)
        return len(changed)

    # --- helpers ---------------------------------------------------------------------------

    async def _lock(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_for_update(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    async def _hash_for(self, user_id: uuid.UUID, password: str, changes: dict[str, object]) -> str:
        # Checked and hashed before the transaction: hashing is slow and must not hold locks.
        user = await self.users.get_by_id(user_id)
        if user is None:
            raise NotFound("No such user.")
        email = str(changes.get("email") or user.email)
        username = changes.get("username") or user.username
        self.policy.check(password, email=email, username=str(username) if username else None)
        return await self.hasher.hash(password)

    async def _apply(
        self, actor: Actor, user: User, changes: dict[str, object], caller: Caller
    ) -> None:
        """Apply `changes` (already authorised for this target) with their consequences."""
        values = {name: value for name, value in changes.items() if getattr(user, name) != value}
        if "email" in changes:
            email = normalize_email(str(changes["email"]))
            values.pop("email", None)
            if email != user.email:
                values["email"] = email
                values.setdefault("is_verified", changes.get("is_verified", False))
        if "username" in values and values["username"] is not None:
            values["username"] = normalize_username(str(values["username"]))
        if not values:
            return
        demoted = values.get("is_superuser") is False
        deactivated = values.get("is_active") is False
        if "is_superuser" in values:
            require_superuser(actor, "Only a superuser can grant or revoke superuser status.")
        if user.is_superuser and (demoted or deactivated):
            await self.guard.require_superuser_remains([user.id])
        await self.users.update(user, **values)
        if deactivated or "hashed_password" in values:
            await self._sign_out_everywhere(
                user, "deactivated" if deactivated else "password_set_by_admin"
            )
        if "hashed_password" in values:
            await self.action_tokens.void(user, ActionPurpose.reset_password, now=self.clock())
        await self._record_changes(actor, user, values, caller)

    async def _record_changes(
        self, actor: Actor, user: User, values: dict[str, object], caller: Caller
    ) -> None:
        events: list[AuditEventType] = []
        if "is_active" in values:
            events.append(
                AuditEventType.user_activated
                if values["is_active"]
                else AuditEventType.user_deactivated
            )
        if "is_superuser" in values:
            events.append(
                AuditEventType.superuser_granted
                if values["is_superuser"]
                else AuditEventType.superuser_revoked
            )
        for event in events:
            await self.audit.record_admin(event, actor, caller=caller, user_ids=[user.id])
        other = sorted(set(values) - {"is_active", "is_superuser"})
        if other:
            # Field names only: values such as the password hash never enter the trail.
            fields = ["password" if name == "hashed_password" else name for name in other]
            await self.audit.record_admin(
                AuditEventType.user_updated, actor, caller=caller, user_ids=[user.id], fields=fields
            )

    async def _sign_out_everywhere(self, user: User, reason: str) -> int:
        user.token_version += 1
        await self.users.update(user)
        return await self.session_rows.revoke_all_for_user(user.id, self.clock(), reason)

    async def _grantable_roles(
        self, actor: Actor, names: Sequence[str], *, already_held: Collection[str]
    ) -> list[Role]:
        wanted = set(names)
        roles = await self.roles.list_by_names_for_share(wanted)
        unknown = wanted - {role.name for role in roles}
        if unknown:
            raise UnknownRoles(unknown)
        added = [role.id for role in roles if role.name not in already_held]
        if added:
            require_grantable(actor, await self.permissions.codenames_for_roles(added))
        return roles
