"""Sign-ins waiting for a second factor: the `mfa_token` a first factor earns, and what makes it
void. A building block of the token endpoint's grants and of provider sign-in; it never commits.

A user with a confirmed second factor gets no tokens from a password or a provider sign-in:
that sign-in opens a challenge and answers `mfa_required` with its `mfa_token` (single use,
`AUTH_MFA_TOKEN_TTL_SECONDS`). The token is bound to the client that signed in and to the
user's token version then (a password change or reset, or a logout-all, voids it), and is void
after `AUTH_MFA_MAX_ATTEMPTS` wrong codes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import DomainError
from app.models import MfaChallenge, User
from app.repositories import MfaChallengeRepository
from app.security.opaque_tokens import new_opaque_token, token_digest
from app.services.tokens.sign_in_sessions import InvalidGrant


class MfaRequired(DomainError):
    """The first factor was right; tokens need the second. Answered as 403 `mfa_required`
    with the `mfa_token` (the OAuth error form, on the token endpoint and the provider
    callback alike)."""

    default_detail = (
        "This account has two-step sign-in: send the `mfa_token` with a code from the "
        "authenticator app (`otp`) or a recovery code (`recovery_code`) to the token endpoint, "
        "grant_type urn:authsvc:params:oauth:grant-type:mfa."
    )

    def __init__(self, mfa_token: str, expires_in: int) -> None:
        super().__init__()
        self.mfa_token = mfa_token
        self.expires_in = expires_in


class InvalidMfaToken(InvalidGrant):
    default_detail = (
        "The mfa_token is invalid, expired, used, for another client, or void after too many "
        "wrong codes; sign in again."
    )


class WrongSecondFactor(InvalidGrant):
    default_detail = "The code is not correct, or was already used."


class MfaChallenges:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.settings = settings
        self.challenges = MfaChallengeRepository(session)

    @property
    def ttl_seconds(self) -> int:
        return self.settings.mfa_token_ttl_seconds

    async def open(
        self, user: User, *, client_id: str, scope: str, first_factor: str, now: datetime
    ) -> str:
        """A challenge for `user`, who just proved `first_factor` to `client_id`; its
        `mfa_token` (only the digest is stored)."""
        await self.challenges.delete_expired(now)
        mfa_token = new_opaque_token()
        await self.challenges.create(
            token_hash=token_digest(mfa_token),
            user_id=user.id,
            client_id=client_id,
            scope=scope,
            first_factor=first_factor,
            token_version=user.token_version,
            created_at=now,
            expires_at=now + timedelta(seconds=self.ttl_seconds),
        )
        return mfa_token

    async def find(self, mfa_token: str) -> MfaChallenge | None:
        """The challenge `mfa_token` names, unlocked (to learn whose budget a guess draws on)."""
        return await self.challenges.get_by_hash(token_digest(mfa_token))

    async def lock(self, mfa_token: str) -> MfaChallenge | None:
        return await self.challenges.get_for_update_by_hash(token_digest(mfa_token))

    def is_open(self, challenge: MfaChallenge, *, client_id: str, now: datetime) -> bool:
        """Whether `challenge` may still be answered, by `client_id`."""
        return (
            challenge.spent_at is None
            and now < challenge.expires_at
            and challenge.failed_attempts < self.settings.mfa_max_attempts
            and challenge.client_id == client_id
        )

    def count_failure(self, challenge: MfaChallenge, now: datetime) -> bool:
        """One more wrong code against `challenge` (locked); True when that voids it."""
        challenge.failed_attempts += 1
        if challenge.failed_attempts >= self.settings.mfa_max_attempts:
            challenge.spent_at = now
            return True
        return False

    def spend(self, challenge: MfaChallenge, now: datetime) -> None:
        challenge.spent_at = now
