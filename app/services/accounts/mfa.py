"""Two-step sign-in, managed by the signed-in user: enrol a TOTP authenticator, confirm it,
remove it, and renew the recovery codes.

Enrolment needs a recent sign-in; removing the factor and new recovery codes need a step-up
(a recent sign-in that passed the second factor). Confirming the factor ends every other
session of the user: a session stolen before cannot outlive the second factor. Every step is
audited; turning the factor on or off is mailed to the owner.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, InvalidInput, NotFound
from app.mail import mfa_disabled_notice, mfa_enabled_notice
from app.models import User
from app.repositories import UserRepository
from app.security.second_factors import otpauth_uri
from app.services.accounts.second_factors import MfaStatus, SecondFactors
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import unit_of_work
from app.services.tokens.recent_authentication import RecentAuthentication
from app.services.tokens.sign_in_limits import Account, SignInLimits
from app.services.tokens.sign_in_sessions import SignInSessions


class MfaAlreadyEnabled(Conflict):
    default_detail = (
        "Two-step sign-in is already on; remove the authenticator first to enrol another."
    )


class NoPendingAuthenticator(Conflict):
    default_detail = "No authenticator is waiting for confirmation; start the enrolment first."


class MfaNotEnabled(Conflict):
    default_detail = "Two-step sign-in is not on for this account."


class WrongTotpCode(InvalidInput):
    default_detail = "The code is not correct (or was already used); try the current one."


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str


class MfaService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.users = UserRepository(session)
        self.factors = SecondFactors(session, context.data_encryptor)
        self.sessions = SignInSessions(session, context.settings)
        self.audit = AuditTrail(session)
        self.sign_in_limits = SignInLimits(context.limiter, context.outbox)
        self.recent_authentication = RecentAuthentication(
            context.settings.reauth_max_age_seconds, context.clock
        )

    async def status(self, user_id: uuid.UUID) -> MfaStatus:
        return await self.factors.status(user_id)

    async def start_totp(
        self, user_id: uuid.UUID, claims: Mapping[str, Any], *, caller: Caller
    ) -> TotpEnrolment:
        """A new pending authenticator (replacing a pending one): its secret and the
        `otpauth://` URI for a QR code. Needs a recent sign-in (`ReauthenticationRequired`);
        `MfaAlreadyEnabled` when a confirmed one exists."""
        self.recent_authentication.require(claims)
        async with unit_of_work(self.session):
            user = await self._lock(user_id)
            if user.mfa_enabled:
                raise MfaAlreadyEnabled
            secret = await self.factors.start_totp(user.id, self.clock())
            await self.audit.record(
                AuditEventType.mfa_enrolment_started,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
            )
        issuer = self.settings.totp_issuer or self.settings.service_name
        return TotpEnrolment(secret, otpauth_uri(secret, account=user.email, issuer=issuer))

    async def confirm_totp(
        self, user_id: uuid.UUID, code: str, *, current_session_id: uuid.UUID, caller: Caller
    ) -> list[str]:
        """Turn two-step sign-in on with the first code from the pending authenticator: the
        new recovery codes (shown once). Every other session of the user ends.

        A code is a guess like a password: it draws on the sign-in budgets first, and a wrong
        one (`WrongTotpCode`) is a failed sign-in.
        """
        user = await self._load(user_id)
        await self.session.close()  # no connection held while waiting for a reservation
        account = Account.of(user, user.email)
        attempt = await self.sign_in_limits.reserve(account, caller.ip)
        try:
            async with unit_of_work(self.session):
                codes = await self._confirm(user_id, code, current_session_id, caller)
        except BaseException:
            await attempt.release()  # refused before the code was checked, or a fault
            raise
        if codes is None:
            async with unit_of_work(self.session):
                await self.audit.record(
                    AuditEventType.login_failed,
                    caller=caller,
                    user_id=user_id,
                    actor_id=user_id,
                    check="totp_confirmation",
                )
            raise WrongTotpCode  # the slots stay taken: they are the failure counts
        await self.sign_in_limits.succeeded(attempt, account, caller.ip)
        return codes

    async def _confirm(
        self, user_id: uuid.UUID, code: str, current_session_id: uuid.UUID, caller: Caller
    ) -> list[str] | None:
        now = self.clock()
        user = await self._lock(user_id)
        if user.mfa_enabled:
            raise MfaAlreadyEnabled
        factor = await self.factors.locked_factor(user.id)
        if factor is None:
            raise NoPendingAuthenticator
        if not self.factors.accept_totp(factor, code, now):
            return None
        factor.confirmed_at = now
        user.mfa_enabled = True
        codes = await self.factors.new_recovery_codes(user.id, now)
        ended = await self.sessions.end_all(user.id, now, "mfa_enabled", keep=current_session_id)
        await self.audit.record(
            AuditEventType.mfa_enabled,
            caller=caller,
            user_id=user.id,
            actor_id=user.id,
            sessions_ended=ended,
        )
        await self.outbox.enqueue(self.session, mfa_enabled_notice(user.email))
        return codes

    async def remove_totp(
        self, user_id: uuid.UUID, claims: Mapping[str, Any], *, caller: Caller
    ) -> None:
        """Turn two-step sign-in off: the authenticator and every recovery code go. Needs a
        step-up (`StepUpRequired`); a pending enrolment is simply dropped."""
        async with unit_of_work(self.session):
            user = await self._lock(user_id)
            self.recent_authentication.require_step_up(claims, has_second_factor=user.mfa_enabled)
            was_enabled = user.mfa_enabled
            if not await self.factors.remove_all(user.id):
                raise NotFound("No authenticator is enrolled.")
            user.mfa_enabled = False
            if was_enabled:
                await self.audit.record(
                    AuditEventType.mfa_disabled, caller=caller, user_id=user.id, actor_id=user.id
                )
                await self.outbox.enqueue(
                    self.session, mfa_disabled_notice(user.email, by_administrator=False)
                )

    async def new_recovery_codes(
        self, user_id: uuid.UUID, claims: Mapping[str, Any], *, caller: Caller
    ) -> list[str]:
        """A fresh set of recovery codes, voiding the old set. Needs a step-up."""
        async with unit_of_work(self.session):
            user = await self._lock(user_id)
            if not user.mfa_enabled:
                raise MfaNotEnabled
            self.recent_authentication.require_step_up(claims, has_second_factor=user.mfa_enabled)
            codes = await self.factors.new_recovery_codes(user.id, self.clock())
            await self.audit.record(
                AuditEventType.recovery_codes_regenerated,
                caller=caller,
                user_id=user.id,
                actor_id=user.id,
            )
        return codes

    async def _load(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_by_id(user_id)
        if user is None:  # deleted between authentication and now
            raise NotFound("No such user.")
        return user

    async def _lock(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_for_update(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user
