"""Self-service for a signed-in user: profile, password, sessions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound, user_conflict
from app.identifiers import normalize_email, normalize_username
from app.mail import email_changed_notice, password_changed_notice
from app.models import ActionPurpose, User, UserSession
from app.repositories import SignInSessionRepository, UserRepository
from app.repositories.common.base import UniqueViolation
from app.services.accounts.action_tokens import ActionTokens
from app.services.accounts.recovery import issue_verification
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import unit_of_work
from app.services.tokens.recent_authentication import RecentAuthentication
from app.services.tokens.sign_in_limits import Account, SignInLimits
from app.services.tokens.sign_in_sessions import SignInSessions


class CurrentPasswordRequired(InvalidInput):
    default_detail = "Changing the email address requires `current_password`."


class WrongCurrentPassword(InvalidInput):
    default_detail = "The current password is not correct."


class AccountService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.tokens = ActionTokens(session)
        self.users = UserRepository(session)
        self.session_rows = SignInSessionRepository(session)
        self.sessions = SignInSessions(session, context.settings)
        self.audit = AuditTrail(session)
        self.sign_in_limits = SignInLimits(context.limiter, context.outbox)
        self.recent_authentication = RecentAuthentication(
            context.settings.reauth_max_age_seconds, context.clock
        )

    async def update_profile(
        self,
        user_id: uuid.UUID,
        changes: dict[str, str | None],
        *,
        current_password: str | None,
        claims: Mapping[str, Any],
        caller: Caller,
    ) -> User:
        """Apply `full_name`, `username` and `email` changes.

        A new email needs the current password (and, with a second factor, a step-up: the
        access token `claims` of a recent sign-in that passed it) and leaves the account
        unverified; the new address gets a verification link and the old one a notice.
        """
        user = await self._load(user_id)
        values: dict[str, object] = dict(changes)
        if changes.get("username") is not None:
            values["username"] = normalize_username(str(changes["username"]))
        new_email = values.pop("email", None)
        old_email = user.email
        email_changes = new_email is not None and normalize_email(str(new_email)) != user.email
        if email_changes:
            self.recent_authentication.require_step_up(claims, has_second_factor=user.mfa_enabled)
            await self._require_current_password(user, current_password, caller)
            values["email"] = normalize_email(str(new_email))
            values["is_verified"] = False
        try:
            async with unit_of_work(self.session):
                if email_changes:
                    user = await self._lock_unless_password_changed(user)
                user = await self.users.update(user, **values)
                if email_changes:
                    verification = await issue_verification(
                        self.tokens, user, self.settings, self.clock()
                    )
                    await self.outbox.enqueue(self.session, verification)
                    await self.outbox.enqueue(
                        self.session, email_changed_notice(old_email, user.email)
                    )
                    await self.audit.record(
                        AuditEventType.email_changed,
                        caller=caller,
                        user_id=user.id,
                        actor_id=user.id,
                    )
                elif values:
                    await self.audit.record(
                        AuditEventType.profile_updated,
                        caller=caller,
                        user_id=user.id,
                        actor_id=user.id,
                        fields=sorted(values),
                    )
        except UniqueViolation as violation:
            raise user_conflict(violation.field) from None
        return user

    async def change_password(
        self,
        user_id: uuid.UUID,
        *,
        current_password: str,
        new_password: str,
        current_session_id: uuid.UUID,
        claims: Mapping[str, Any],
        caller: Caller,
    ) -> None:
        """Set a new password, end every other session and retire older access tokens and
        outstanding reset links. With a second factor, the access token `claims` must show a
        step-up (`StepUpRequired`)."""
        user = await self._load(user_id)
        self.recent_authentication.require_step_up(claims, has_second_factor=user.mfa_enabled)
        await self._require_current_password(user, current_password, caller)
        self.policy.check(
            new_password, email=user.email, username=user.username, field="new_password"
        )
        hashed = await self.hasher.hash(new_password)
        async with unit_of_work(self.session):
            user = await self._lock_unless_password_changed(user)
            user.hashed_password = hashed
            # The new token version also starts the account's sign-in counts afresh.
            user.token_version += 1
            await self.tokens.void(user, ActionPurpose.reset_password, now=self.clock())
            ended = await self.sessions.end_all(
                user.id, self.clock(), "password_changed", keep=current_session_id
            )
            await self.audit.record(
                AuditEventType.password_changed,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
                sessions_ended=ended,
            )
            await self.outbox.enqueue(self.session, password_changed_notice(user.email))

    async def list_sessions(self, user_id: uuid.UUID) -> list[UserSession]:
        return await self.session_rows.list_active_for_user(user_id, self.clock())

    async def end_session(self, user_id: uuid.UUID, session_id: uuid.UUID, caller: Caller) -> None:
        """End one of the user's own sessions; someone else's is reported as not found."""
        async with unit_of_work(self.session):
            sign_in_session = await self.session_rows.get_by_id(session_id)
            if (
                sign_in_session is None
                or sign_in_session.user_id != user_id
                or sign_in_session.revoked_at is not None
            ):
                raise NotFound("No such session.")
            await self.sessions.end(session_id, self.clock(), "ended_by_user")
            await self.audit.record(
                AuditEventType.session_ended,
                caller=caller,
                user_id=user_id,
                actor_id=user_id,
                session_id=str(session_id),
            )

    async def _load(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_by_id(user_id)
        if user is None:  # deleted between authentication and now
            raise NotFound("No such user.")
        return user

    async def _lock_unless_password_changed(self, user: User) -> User:
        """`user` re-read and locked for the rest of the transaction. If another request
        changed the password since `user` was read, the password this request verified is no
        longer the current one: WrongCurrentPassword, as if the requests had run in turn."""
        verified_hash = user.hashed_password
        locked = await self.users.get_for_update(user.id)
        if locked is None:
            raise NotFound("No such user.")
        if locked.hashed_password != verified_hash:
            raise WrongCurrentPassword
        return locked

    async def _require_current_password(
        self, user: User, password: str | None, caller: Caller
    ) -> None:
        """`password` must be the user's: a check drawing on the same budgets as sign-in (a
        stolen access token must not become a password oracle), audited when it fails."""
        if not password:
            raise CurrentPasswordRequired
        # Hand the connection back before queueing for the hash (loaded attributes stay
        # readable); the write that follows takes a fresh one and re-checks under a lock.
        await self.session.close()
        account = Account.of(user, user.email)
        attempt = await self.sign_in_limits.reserve(account, caller.ip)
        try:
            matches = (
                len(password) <= self.settings.password_max_length
                and (await self.hasher.verify_and_update(password, user.hashed_password))[0]
            )
        except BaseException:
            await attempt.release()
            raise
        if not matches:
            async with unit_of_work(self.session):
                await self.audit.record(
                    AuditEventType.login_failed,
                    caller=caller,
                    user_id=user.id,
                    # The caller holds the user's access token: theirs is the act.
                    actor_id=user.id,
                    check="current_password",
                )
            raise WrongCurrentPassword
        await self.sign_in_limits.succeeded(attempt, account, caller.ip)
