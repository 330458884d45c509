"""The budgets every credential check draws on: sign-in passwords, `current_password` checks
(and, later, second-factor codes).

An attempt reserves a slot per (account, client IP) — the strict limit —, per account from
every address and per client IP, before the credential is checked. A failure keeps its slots;
a success gives them back and clears the (account, IP) count. When the account-wide limit
trips, the owner's verified address gets one notice per window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from app.errors import RateLimited
from app.mail import sign_in_attempts_notice
from app.services.common.rate_limits import LimitName, RateLimiter, Reservation

if TYPE_CHECKING:
    from app.models import User
    from app.services.common.mail_outbox import MailOutbox

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Account:
    """Whose budget an attempt draws on.

    `key` is the account itself (so its email and username share one budget), or the name
    typed for an unknown account (unknown names are throttled the same way: no oracle). It
    includes the user's token version: a password change or reset bumps the version, which
    starts every count of the account afresh, on every address at once.
    """

    key: str
    owner: User | None

    @classmethod
    def of(cls, user: User | None, sign_in_name: str) -> Account:
        """`sign_in_name` as normalized (`normalize_sign_in_name`)."""
        if user is None:
            return cls(f"name:{sign_in_name}", None)
        return cls(f"user:{user.id}:{user.token_version}", user)


class SignInLimits:
    def __init__(self, limiter: RateLimiter, outbox: MailOutbox) -> None:
        self.limiter = limiter
        self.outbox = outbox

    async def reserve(self, account: Account, ip: str | None) -> Reservation:
        """Slots for one credential check, or `RateLimited` (nothing counted)."""
        try:
            return await self.limiter.reserve(
                (LimitName.login_ip, ip),
                (LimitName.login_account_ip, None if ip is None else f"{account.key}:{ip}"),
                (LimitName.login_account, account.key),
            )
        except RateLimited as refused:
            if refused.limit == LimitName.login_account:
                await self._notify_owner(account)
            raise

    async def succeeded(self, reservation: Reservation, account: Account, ip: str | None) -> None:
        """The credential was right: this attempt does not count, nor do earlier failures
        from the same address."""
        await reservation.release()
        if ip is not None:
            await self.limiter.clear(LimitName.login_account_ip, f"{account.key}:{ip}")

    async def _notify_owner(self, account: Account) -> None:
        owner = account.owner
        if owner is None or not owner.is_verified:
            return
        # One notice per window however many attempts keep arriving, on every replica.
        if await self.limiter.try_consume(LimitName.login_account_notice, str(owner.id)):
            rule = self.limiter.rules[LimitName.login_account]
            notice = sign_in_attempts_notice(
                owner.email, rule.limit, timedelta(seconds=rule.window_seconds)
            )
            # No change goes with it: the notice is queued in a transaction of its own. The
            # caller's answer is the refusal (429), whether or not the notice could be queued.
            try:
                await self.outbox.enqueue_alone(notice)
            except Exception as exc:
                logger.warning("sign-in attempts notice not queued: %s", type(exc).__name__)
