"""Email verification and password reset: mailed single-use links.

Requests answer the same whether or not the account exists (no enumeration); mail is only
sent when it does, queued in the outbox in the transaction that issues the link.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.identifiers import normalize_email
from app.mail import (
    OutgoingEmail,
    frontend_link,
    password_changed_notice,
    password_reset_email,
    verification_email,
)
from app.models import ActionPurpose, User
from app.repositories import UserRepository
from app.services.accounts.action_tokens import ActionTokens, InvalidActionToken
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.rate_limits import LimitName
from app.services.common.unit_of_work import unit_of_work
from app.services.tokens.sign_in_sessions import SignInSessions

VERIFY_PATH = "verify"
RESET_PATH = "reset-password"


async def issue_verification(
    tokens: ActionTokens, user: User, settings: Settings, now: datetime
) -> OutgoingEmail:
    """A new verification link for the user's current address, and the mail that carries it.

    The caller queues the mail in the same transaction (`MailOutbox.enqueue`).
    """
    valid_for = timedelta(seconds=settings.verify_email_token_ttl_seconds)
    raw = await tokens.issue(user, ActionPurpose.verify_email, valid_for=valid_for, now=now)
    link = frontend_link(settings, VERIFY_PATH, raw)
    return verification_email(user.email, link, valid_for)


class AccountRecoveryService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.users = UserRepository(session)
        self.tokens = ActionTokens(session)
        self.sessions = SignInSessions(session, context.settings)
        self.audit = AuditTrail(session)

    @property
    def reset_valid_for(self) -> timedelta:
        return timedelta(seconds=self.settings.reset_password_token_ttl_seconds)

    async def request_verification(self, email: str, caller: Caller) -> None:
        """Mail a verification link if an unverified account has this address.

        Answers once the request is counted; the account is looked up after the response,
        so the answer's timing does not tell whether it exists.
        """
        address = await self._throttle(email, caller)
        self.deferred.run_later(lambda session: self._over(session)._mail_verification(address))

    async def verify_email(self, raw_token: str, caller: Caller) -> User:
        """Mark the account verified; the link is spent."""
        async with (
            self._redemption(ActionPurpose.verify_email, caller),
            unit_of_work(self.session),
        ):
            redeemed = await self.tokens.redeem(
                raw_token, ActionPurpose.verify_email, now=self.clock()
            )
            user = redeemed.user
            user.is_verified = True
            await self.audit.record(AuditEventType.email_verified, caller=caller, user_id=user.id)
        return user

    async def forgot_password(self, email: str, caller: Caller) -> None:
        """Mail a reset link if an active account has this address; older links stop working.

        Answers once the request is counted; the account is looked up after the response.
        """
        address = await self._throttle(email, caller)
        self.deferred.run_later(
            lambda session: self._over(session)._mail_reset_link(address, caller)
        )

    async def reset_password(self, raw_token: str, new_password: str, caller: Caller) -> None:
        """Set a new password from a reset link; every session ends, every token is retired,
        and every count of failed sign-ins of the account starts afresh."""
        async with self._redemption(ActionPurpose.reset_password, caller):
            # Validate link and password first, hash outside the transaction, then spend the
            # link atomically: a weak password leaves the link usable for a second try.
            candidate = await self.tokens.check(
                raw_token, ActionPurpose.reset_password, now=self.clock()
            )
            self.policy.check(
                new_password,
                email=candidate.user.email,
                username=candidate.user.username,
                field="new_password",
            )
            await self.session.rollback()  # release the read transaction before the slow hash
            hashed = await self.hasher.hash(new_password)
            now = self.clock()
            async with unit_of_work(self.session):
                redeemed = await self.tokens.redeem(
                    raw_token, ActionPurpose.reset_password, now=now
                )
                user = redeemed.user
                user.hashed_password = hashed
                # The new token version also starts the account's sign-in counts afresh.
                user.token_version += 1
                await self.tokens.void(user, ActionPurpose.reset_password, now=now)
                ended = await self.sessions.end_all(user.id, now, "password_reset")
                await self.audit.record(
                    AuditEventType.password_reset,
                    caller=caller,
                    user_id=user.id,
                    sessions_ended=ended,
                )
                await self.outbox.enqueue(self.session, password_changed_notice(user.email))

    async def _mail_verification(self, address: str) -> None:
        async with unit_of_work(self.session):
            user = await self.users.get_by_email(address)
            if user is None or user.is_verified or not user.is_active:
                return
            mail = await issue_verification(self.tokens, user, self.settings, self.clock())
            await self.outbox.enqueue(self.session, mail)

    async def _mail_reset_link(self, address: str, caller: Caller) -> None:
        now = self.clock()
        async with unit_of_work(self.session):
            user = await self.users.get_by_email(address)
            if user is None or not user.is_active:
                return
            await self.tokens.void(user, ActionPurpose.reset_password, now=now)
            raw = await self.tokens.issue(
                user, ActionPurpose.reset_password, valid_for=self.reset_valid_for, now=now
            )
            await self.audit.record(
                AuditEventType.password_reset_requested, caller=caller, user_id=user.id
            )
            link = frontend_link(self.settings, RESET_PATH, raw)
            await self.outbox.enqueue(
                self.session, password_reset_email(user.email, link, self.reset_valid_for)
            )

    def _over(self, session: AsyncSession) -> AccountRecoveryService:
        """This service over another database session (a deferred job's)."""
        return AccountRecoveryService(session, self.context)

    @asynccontextmanager
    async def _redemption(self, purpose: ActionPurpose, caller: Caller) -> AsyncIterator[None]:
        """One attempt at a one-time token, counted per client IP before the token is looked
        up. A refused token keeps its slot and is audited; any other outcome gives it back."""
        attempt = await self.limiter.reserve((LimitName.token_ip, caller.ip))
        try:
            yield
        except InvalidActionToken:
            await self.session.rollback()
            async with unit_of_work(self.session):
                await self.audit.record(
                    AuditEventType.one_time_token_refused, caller=caller, purpose=purpose.value
                )
            raise
        except BaseException:
            await attempt.release()
            raise
        await attempt.release()

    async def _throttle(self, email: str, caller: Caller) -> str:
        """Count a mail request per client IP, per (address, IP) and per address: a stranger
        exhausts their own share of the address's requests, not the owner's."""
        address = normalize_email(email)
        await self.limiter.reserve(
            (LimitName.email_ip, caller.ip),
            (LimitName.email_address, None if caller.ip is None else f"{address}:{caller.ip}"),
            (LimitName.email_address_total, address),
        )
        return address
