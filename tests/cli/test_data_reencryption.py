"""`authsvc keys reencrypt-data`: rotating AUTH_DATA_ENCRYPTION_KEY, as an operator does it.

The service runs with key A and holds a TOTP secret and queued mail under it; the operator
lists the new key first (`B,A`) and runs the command; afterwards the old key can go: a service
with key B alone still checks the user's codes and reads the queued mail.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import create_app
from app.models import OutboxMessage, TotpFactor
from app.services.common.outbox import decode_mail
from tests.support.cli import AUTHSVC
from tests.support.databases import make_settings
from tests.support.flows import register_and_sign_in
from tests.support.mfa import Enrolled, enrol_totp, sign_in_with_totp

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "data_encryption_key": KEY_A,
        # Mail cannot be delivered (nothing listens on port 1) and is retried only an hour
        # later: the registration's and the enrolment's mails wait in the outbox, under key A.
        "email_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": 1,
        "outbox_retry_base_seconds": 3600,
    }


def _run(args: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    return subprocess.run(
        [AUTHSVC, *args],
        env={**clean_env, "AUTH_ENVIRONMENT": "development", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def reencrypt_data(
    database_url: str, tmp_path: Path, keys: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_DATA_ENCRYPTION_KEY": keys,
        "AUTH_KEYS_DIR": str(tmp_path / "keys"),
    }
    return await asyncio.to_thread(_run, ("keys", "reencrypt-data", "--batch-size", "1"), env)


async def stored_ciphertexts(sessions: Sessions) -> tuple[list[bytes], list[bytes]]:
    """The TOTP secrets and the outbox payloads as the database holds them."""
    async with sessions() as session:
        secrets = (await session.scalars(select(TotpFactor.encrypted_secret))).all()
        payloads = (await session.scalars(select(OutboxMessage.payload))).all()
    return [secret.encode() for secret in secrets], list(payloads)


async def enrolled_user(client: httpx.AsyncClient, email: str = "ada@example.com") -> Enrolled:
    tokens = await register_and_sign_in(client, email)
    return await enrol_totp(client, tokens["access_token"])


async def test_after_reencrypting_under_b_the_old_key_can_go(
    client: httpx.AsyncClient,
    sessions: Sessions,
    database_url: str,
    tmp_path: Path,
    keys_dir: Path,
) -> None:
    enrolled = await enrolled_user(client)
    other = await enrolled_user(client, "bob@example.com")
    secrets, payloads = await stored_ciphertexts(sessions)
    assert len(secrets) == 2  # one batch each (--batch-size 1): the walk goes on after a batch
    assert payloads  # the "two-step sign-in is on" notice, at least

    rotated = await reencrypt_data(database_url, tmp_path, f"{KEY_B},{KEY_A}")
    again = await reencrypt_data(database_url, tmp_path, f"{KEY_B},{KEY_A}")

    assert rotated.returncode == 0, rotated.stderr
    assert "TOTP secrets: 2 re-encrypted, 0 already under the first key" in rotated.stdout
    assert f"queued mails: {len(payloads)} re-encrypted, 0 already" in rotated.stdout
    assert again.returncode == 0, again.stderr
    assert "TOTP secrets: 0 re-encrypted, 2 already under the first key" in again.stdout
    assert f"queued mails: 0 re-encrypted, {len(payloads)} already" in again.stdout
    # Key B alone reads everything now; key A reads none of it.
    new_secrets, new_payloads = await stored_ciphertexts(sessions)
    only_b, only_a = Fernet(KEY_B.encode()), Fernet(KEY_A.encode())
    assert {only_b.decrypt(secret).decode() for secret in new_secrets} == {
        enrolled.secret,
        other.secret,
    }
    assert {decode_mail(only_b.decrypt(payload)).to for payload in new_payloads} == {
        "ada@example.com",
        "bob@example.com",
    }
    for ciphertext in [*new_secrets, *new_payloads]:
        with pytest.raises(InvalidToken):
            only_a.decrypt(ciphertext)
    # A service configured with key B alone: the user still signs in with the authenticator.
    async with app_with_data_key(database_url, keys_dir, KEY_B) as key_b_client:
        tokens = await sign_in_with_totp(key_b_client, enrolled, steps=1)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["acr"] == "aal2"
    assert claims["amr"] == ["pwd", "otp"]


async def test_rows_under_no_listed_key_are_left_alone_and_fail_the_command(
    client: httpx.AsyncClient, sessions: Sessions, database_url: str, tmp_path: Path
) -> None:
    await enrolled_user(client)
    before = await stored_ciphertexts(sessions)

    result = await reencrypt_data(database_url, tmp_path, f"{KEY_C},{KEY_B}")

    assert result.returncode == 1
    assert "TOTP secrets: 0 re-encrypted, 0 already under the first key, 1 under none" in (
        result.stdout
    )
    assert "queued mails: 0 re-encrypted, 0 already under the first key" in result.stdout
    assert "could not be decrypted with any key of AUTH_DATA_ENCRYPTION_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert await stored_ciphertexts(sessions) == before


@asynccontextmanager
async def app_with_data_key(
    database_url: str, keys_dir: Path, key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service on the test's database with AUTH_DATA_ENCRYPTION_KEY=`key`."""
    app = create_app(make_settings(database_url, keys_dir=keys_dir, data_encryption_key=key))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client
