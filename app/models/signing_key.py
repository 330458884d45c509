"""The signing key ring of access tokens, when it lives in the database (`AUTH_KEY_STORE=database`).

Private keys are stored only encrypted (Fernet, under `AUTH_KEY_ENCRYPTION_KEY`), and only while
the key is staged or active: a retired key keeps its public half alone. The schedule columns
decide each key's state at any moment (see `app/security/keys/lifecycle.py`); `state` is the
state as of the last write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDPrimaryKey

# The one row of `signing_key_ring`.
KEY_RING_ROW_ID = 1


class StoredSigningKey(UUIDPrimaryKey, Base):
    """One key of the ring: its public half, its encrypted private half, its schedule."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        CheckConstraint("state IN ('staged', 'active', 'retired')", name="state"),
        # A retired key never keeps its private half.
        CheckConstraint(
            "state <> 'retired' OR encrypted_private_key IS NULL", name="retired_key_is_public"
        ),
    )

    # RFC 7638 thumbprint of the public key (base64url SHA-256: 43 characters).
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    # SubjectPublicKeyInfo PEM.
    public_key_pem: Mapped[str] = mapped_column(Text)
    # Fernet token of the PKCS#8 PEM private key; None once the key is retired.
    encrypted_private_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    activates_at: Mapped[datetime]
    retires_at: Mapped[datetime | None]
    publish_until: Mapped[datetime | None]


class SigningKeyRing(Base):
    """The ring as a whole, one row: writers lock it (so they take turns and read each other's
    changes), and bump `revision`, which every process polls to notice a change."""

    __tablename__ = "signing_key_ring"
    __table_args__ = (CheckConstraint(f"id = {KEY_RING_ROW_ID}", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger)
