"""Single-use mailed tokens: issued with a purpose and an expiry, stored only as digests.

A building block of the account-recovery use cases; it never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.models import ActionPurpose, ActionToken, User
from app.repositories import ActionTokenRepository, UserRepository
from app.security.opaque_tokens import new_opaque_token, token_digest


class InvalidActionToken(InvalidInput):
    """Expired, used, forged or issued for another purpose or address: all look the same."""

    default_detail = "The link is invalid or has expired; request a new one."


@dataclass(frozen=True, slots=True)
class RedeemedToken:
    token: ActionToken
    user: User


class ActionTokens:
    def __init__(self, session: AsyncSession) -> None:
        self.tokens = ActionTokenRepository(session)
        self.users = UserRepository(session)

    async def issue(
        self, user: User, purpose: ActionPurpose, *, valid_for: timedelta, now: datetime
    ) -> str:
        """A new token for `user`'s current address; only its digest is stored."""
        raw = new_opaque_token()
        await self.tokens.create(
            user_id=user.id,
            purpose=purpose.value,
            token_hash=token_digest(raw),
            email=user.email,
            created_at=now,
            expires_at=now + valid_for,
        )
        return raw

    async def redeem(self, raw: str, purpose: ActionPurpose, *, now: datetime) -> RedeemedToken:
        """Spend a token, or raise `InvalidActionToken` (see `check`)."""
        redeemed = await self.check(raw, purpose, now=now)
        if not await self.tokens.use(redeemed.token.id, now):
            raise InvalidActionToken  # redeemed concurrently by another request
        return redeemed

    async def check(self, raw: str, purpose: ActionPurpose, *, now: datetime) -> RedeemedToken:
        """The token and its user if the token could be redeemed now, without spending it.

        It must exist, have this purpose, be unexpired and unused, and have been sent to the
        address the account still has (an email change voids links sent to the old one).
        """
        token = await self.tokens.get_by_hash(token_digest(raw))
        if token is None or token.purpose != purpose.value or token.used_at is not None:
            raise InvalidActionToken
        if now >= token.expires_at:
            raise InvalidActionToken
        user = await self.users.get_by_id(token.user_id)
        if user is None or user.email != token.email:
            raise InvalidActionToken
        return RedeemedToken(token=token, user=user)

    async def void(self, user: User, purpose: ActionPurpose, *, now: datetime) -> int:
        return await self.tokens.void_for_user(user.id, purpose, now)
