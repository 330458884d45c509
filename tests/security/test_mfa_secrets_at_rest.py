"""Second factors at rest: a dump of the database, as a backup or a thief holds it, shows no
TOTP secret and no recovery code in any spelling. The secret is kept as Fernet ciphertext
under AUTH_DATA_ENCRYPTION_KEY, the codes as SHA-256 digests of their normal form.

PostgreSQL is dumped with `pg_dump`; SQLite is read twice, as the raw bytes of its files
(the write-ahead log included, and free pages with whatever they held) and as `iterdump`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import RecoveryCode, TotpFactor
from tests.support.flows import bearer, register_and_sign_in, user_id
from tests.support.mfa import Enrolled, enrol_totp, mfa_grant, mfa_token_for
from tests.support.state import FrozenClock

pytestmark = pytest.mark.usefixtures("app")

Sessions = async_sessionmaker[AsyncSession]

DATA_ENCRYPTION_KEY = Fernet.generate_key()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"data_encryption_key": DATA_ENCRYPTION_KEY.decode()}


@dataclass(frozen=True, slots=True)
class Dump:
    """What a copy of the database shows: text (SQL) and, for SQLite, the files' bytes."""

    text: str
    raw: bytes = b""

    def shows(self, needle: str) -> bool:
        """Whether `needle` is in the dump, in any letter case, or as the hex of its bytes
        (how bytea and BLOB values are dumped)."""
        text, raw = self.text.lower(), self.raw.lower()
        forms = {needle.lower(), needle.encode().hex()}
        return any(form in text or form.encode() in raw for form in forms)

    def shows_bytes(self, secret: bytes) -> bool:
        """Whether `secret` (binary) is in the files, or its hex in the text."""
        return secret in self.raw or secret.hex() in self.text.lower()


def dump(database_url: str) -> Dump:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        environment = {**os.environ, "PGPASSWORD": url.password or ""}
        text = subprocess.run(
            [
                "pg_dump",
                f"--host={url.host}",
                f"--port={url.port or 5432}",
                f"--username={url.username}",
                str(url.database),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env=environment,
        ).stdout
        return Dump(text)
    path = Path(str(url.database))
    raw = b"".join(
        file.read_bytes()
        for file in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-journal"),
        )
        if file.exists()
    )
    with sqlite3.connect(path) as connection:
        text = "\n".join(connection.iterdump())
    return Dump(text, raw)


def spellings(code: str) -> set[str]:
    """A recovery code as shown and as it may be typed: hyphens, spaces or nothing between
    its groups (case is left to `Dump.shows`)."""
    groups = code.split("-")
    return {code, "".join(groups), " ".join(groups)}


async def stored_factors(sessions: Sessions, user: str) -> tuple[TotpFactor, list[RecoveryCode]]:
    owner = uuid.UUID(user)
    async with sessions() as session:
        factor = await session.scalar(select(TotpFactor).where(TotpFactor.user_id == owner))
        codes = await session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == owner))
        assert factor is not None
        return factor, list(codes.all())


async def test_a_database_dump_holds_no_totp_secret_and_no_recovery_code(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock, database_url: str
) -> None:
    # Ada: confirmed, one recovery code used, a second sign-in waiting for its code.
    tokens = await register_and_sign_in(client)
    ada = await user_id(client, bearer(tokens["access_token"]))
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    used = await mfa_grant(
        client, await mfa_token_for(client), recovery_code=enrolled.recovery_codes[0]
    )
    assert used.status_code == 200
    waiting_mfa_token = await mfa_token_for(client)
    # Grace: an enrolment started, not confirmed.
    grace = await register_and_sign_in(client, "grace@example.com")
    started = await client.post("/users/me/mfa/totp", headers=bearer(grace["access_token"]))
    pending_secret = started.json()["secret"]

    backup = dump(database_url)

    factor, codes = await stored_factors(sessions, ada)
    # The dump is of this database, with the rows in it.
    assert backup.shows(factor.encrypted_secret)
    assert all(backup.shows(code.code_hash) for code in codes)
    for secret in (enrolled.secret, pending_secret):
        assert not backup.shows(secret)
        assert not backup.shows_bytes(base64.b32decode(secret))  # the key itself
    for code in enrolled.recovery_codes:
        for spelling in spellings(code):
            assert not backup.shows(spelling), "a recovery code is in the dump"
    assert not backup.shows(waiting_mfa_token)


async def test_the_totp_secret_is_fernet_ciphertext_under_the_data_encryption_key(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    ada = await user_id(client, bearer(tokens["access_token"]))
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)

    factor, _ = await stored_factors(sessions, ada)

    token = factor.encrypted_secret.encode()
    assert base64.urlsafe_b64decode(token)[0] == 0x80  # Fernet's version byte
    assert Fernet(DATA_ENCRYPTION_KEY).decrypt(token) == enrolled.secret.encode()
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(token)


async def test_recovery_codes_are_kept_as_digests_of_their_normal_form(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    ada = await user_id(client, bearer(tokens["access_token"]))
    enrolled: Enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)

    _, codes = await stored_factors(sessions, ada)

    expected = {
        hashlib.sha256(code.replace("-", "").lower().encode()).hexdigest()
        for code in enrolled.recovery_codes
    }
    assert {code.code_hash for code in codes} == expected
    assert all(code.used_at is None for code in codes)
