"""Second factors: a user's TOTP authenticator, their recovery codes, and the sign-ins waiting
for a second factor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UUIDPrimaryKey


class TotpFactor(UUIDPrimaryKey, CreatedAt, Base):
    """A user's TOTP authenticator (RFC 6238). Pending until a first code confirms it; one per
    user. The shared secret must be read back to check codes, so it is kept encrypted
    (`AUTH_DATA_ENCRYPTION_KEY`), never in clear."""

    __tablename__ = "totp_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    encrypted_secret: Mapped[str] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None]
    # The last time step whose code was accepted: a code is accepted once, so a code seen
    # over a shoulder or replayed from a log is refused for the rest of its window.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(UUIDPrimaryKey, CreatedAt, Base):
    """One single-use recovery code, known only by its SHA-256 digest (80 random bits)."""

    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]


class MfaChallenge(UUIDPrimaryKey, CreatedAt, Base):
    """A sign-in that proved its first factor and waits for the second: the `mfa_token`
    (kept as a digest) names it. Single use, short-lived, void after too many wrong codes,
    and bound to the client, scope and first factor of the sign-in that opened it."""

    __tablename__ = "mfa_challenges"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    # The first factor's RFC 8176 method (`pwd`, or `fed` for a provider sign-in).
    first_factor: Mapped[str] = mapped_column(String(16))
    # The user's token version when the first factor was proved: a password change or reset,
    # or a logout-all, since then voids the challenge.
    token_version: Mapped[int]
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(index=True)
    spent_at: Mapped[datetime | None]
