"""A user's second factors: the TOTP authenticator and the recovery codes. A building block of
the MFA use cases and of the second sign-in step; it never commits.

Codes are checked inside the caller's transaction with the factor's row locked, so a code is
accepted once however many requests present it at the same moment.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ServiceUnavailable
from app.models import TotpFactor
from app.repositories import RecoveryCodeRepository, TotpFactorRepository
from app.security.encryption import DecryptionFailed, Encryptor
from app.security.second_factors import (
    matching_totp_step,
    new_recovery_codes,
    new_totp_secret,
    recovery_code_digest,
    recovery_code_digests,
)

logger = logging.getLogger(__name__)


class AuthenticatorUnreadable(ServiceUnavailable):
    """The stored TOTP secret is under none of the configured data encryption keys (a key
    dropped before `authsvc keys reencrypt-data` ran): an operator's fault, not the user's."""

    default_detail = (
        "Codes from the authenticator app cannot be checked right now; use a recovery code, "
        "or try again later."
    )


@dataclass(frozen=True, slots=True)
class MfaStatus:
    totp: bool  # a confirmed authenticator
    recovery_codes_remaining: int


class SecondFactors:
    def __init__(self, session: AsyncSession, encryptor: Callable[[], Encryptor]) -> None:
        self.factors = TotpFactorRepository(session)
        self.recovery_codes = RecoveryCodeRepository(session)
        self._encryptor = encryptor

    async def status(self, user_id: uuid.UUID) -> MfaStatus:
        factor = await self.factors.get_for_user(user_id)
        return MfaStatus(
            totp=factor is not None and factor.confirmed_at is not None,
            recovery_codes_remaining=await self.recovery_codes.count_unused(user_id),
        )

    async def locked_factor(self, user_id: uuid.UUID) -> TotpFactor | None:
        """The user's authenticator, pending or confirmed, locked for the transaction."""
        return await self.factors.get_for_update_for_user(user_id)

    async def start_totp(self, user_id: uuid.UUID, now: datetime) -> str:
        """A new pending authenticator for the user (replacing a pending one); its secret.
        The caller makes sure no confirmed one exists."""
        secret = new_totp_secret()
        await self.factors.delete_for_user(user_id)
        await self.factors.create(
            user_id=user_id,
            encrypted_secret=self._encryptor().encrypt(secret.encode()).decode(),
            created_at=now,
        )
        return secret

    def accept_totp(self, factor: TotpFactor, code: str, now: datetime) -> bool:
        """Whether `code` is the factor's code for now (one step either side), never used
        before; if so, remember its step so it is not accepted again. `factor` must be locked
        (`locked_factor`)."""
        try:
            secret = self._encryptor().decrypt(factor.encrypted_secret.encode()).decode()
        except DecryptionFailed:
            logger.error(
                "the TOTP secret of user %s is under no key of AUTH_DATA_ENCRYPTION_KEY; "
                "put the key it was made with back in the list",
                factor.user_id,
            )
            raise AuthenticatorUnreadable(retry_after_seconds=60) from None
        step = matching_totp_step(secret, code, now, after_step=factor.last_used_step)
        if step is None:
            return False
        factor.last_used_step = step
        return True

    async def spend_recovery_code(self, user_id: uuid.UUID, code: str, now: datetime) -> bool:
        """Use up one of the user's unused recovery codes; False if `code` is none of them."""
        return await self.recovery_codes.spend(user_id, recovery_code_digest(code), now)

    async def unused_recovery_codes(self, user_id: uuid.UUID) -> int:
        return await self.recovery_codes.count_unused(user_id)

    async def new_recovery_codes(self, user_id: uuid.UUID, now: datetime) -> list[str]:
        """A fresh set of recovery codes, voiding the old set; shown once, stored as digests."""
        codes = new_recovery_codes()
        await self.recovery_codes.replace_for_user(user_id, recovery_code_digests(codes), now)
        return codes

    async def remove_all(self, user_id: uuid.UUID) -> bool:
        """Remove the authenticator and every recovery code: leftover codes must never keep
        asking for a second factor the user no longer has. True if there was anything."""
        had_factor = await self.factors.delete_for_user(user_id)
        had_codes = await self.recovery_codes.delete_for_user(user_id)
        return had_factor or bool(had_codes)
