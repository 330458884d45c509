"""The key ring in the database (AUTH_KEY_STORE=database), on both backends: the lifecycle, the
encryption of private keys, concurrent writers, the watcher that keeps a process's ring
current, and the import of a key directory."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.security.encryption import Encryptor
from app.security.keys.directory import KeyDirectory
from app.security.keys.errors import (
    KeyConfigurationError,
    KeyLifecycleError,
    KeyRingExistsError,
    KeyRingNotFoundError,
)
from app.security.keys.lifecycle import KeyRotation, KeyState, retirement_period
from app.security.keys.signing_key import Algorithm, SigningKey
from app.services.tokens.signing_keys import DatabaseKeyStore, ImportOutcome, SigningKeys

AHEAD = timedelta(seconds=600)
RETIRE_FOR = retirement_period(900)
S = timedelta(seconds=1)
KEY = Fernet.generate_key()

Sessions = async_sessionmaker[AsyncSession]


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def encryptor() -> Encryptor:
    return Encryptor([KEY])


@asynccontextmanager
async def store(sessions: Sessions, encryptor: Encryptor | None) -> AsyncIterator[DatabaseKeyStore]:
    """The key store over a session of its own, as a separate process would have."""
    async with sessions() as session:
        yield DatabaseKeyStore(session, encryptor)


async def generate(
    sessions: Sessions, encryptor: Encryptor, algorithm: Algorithm = "ES256", *, now: datetime
) -> SigningKey:
    async with store(sessions, encryptor) as keys:
        return await keys.generate(algorithm, now=now)


async def rotate(
    sessions: Sessions,
    encryptor: Encryptor,
    algorithm: Algorithm = "ES256",
    *,
    now: datetime,
    after: timedelta = AHEAD,
) -> KeyRotation:
    async with store(sessions, encryptor) as keys:
        return await keys.rotate(algorithm, now=now, activate_after=after, retire_for=RETIRE_FOR)


async def rows(sessions: Sessions) -> list[dict[str, object]]:
    async with sessions() as session:
        result = await session.execute(text("SELECT * FROM signing_keys"))
        return [dict(row._mapping) for row in result]


def database_settings(settings: Settings, **values: object) -> Settings:
    """`settings` with the key ring in the database, encrypted under `KEY` (or the
    `key_encryption_key` given), never generated unless asked."""
    key = values.pop("key_encryption_key", KEY.decode())
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "key_store": "database",
            "key_encryption_key": SecretStr(str(key)),
            "jwt_keys_autogenerate": False,
            **values,
        }
    )


# --- the lifecycle in the database --------------------------------------------------------


async def test_a_rotation_is_staged_activates_on_time_and_is_settled(
    session_factory: Sessions, encryptor: Encryptor
) -> None:
    now = utcnow()
    old = await generate(session_factory, encryptor, now=now)
    rotation = await rotate(session_factory, encryptor, now=now)
    new = rotation.current

    async with store(session_factory, encryptor) as keys:
        revision, schedule = await keys.load(now)
    assert schedule is not None
    assert schedule.ring_at(now).signing_key.kid == old.kid
    assert schedule.ring_at(now + AHEAD).signing_key.kid == new.kid
    assert schedule.ring_at(now + AHEAD).signing_key.private_key is not None
    stored = {row["kid"]: row for row in await rows(session_factory)}
    assert (stored[new.kid]["state"], stored[old.kid]["state"]) == ("staged", "active")

    async with store(session_factory, None) as keys:
        changed = await keys.settle(now + AHEAD)
        unchanged = await keys.settle(now + AHEAD)
        new_revision = await keys.revision()

    assert (changed, unchanged) == (True, False)
    stored = {row["kid"]: row for row in await rows(session_factory)}
    assert (stored[new.kid]["state"], stored[old.kid]["state"]) == ("active", "retired")
    assert stored[old.kid]["encrypted_private_key"] is None
    assert new_revision == (revision or 0) + 1
    async with store(session_factory, None) as keys:
        await keys.settle(rotation.publish_until)
    assert [row["kid"] for row in await rows(session_factory)] == [new.kid]


async def test_retire_and_the_refusals_of_the_lifecycle(
    session_factory: Sessions, encryptor: Encryptor
) -> None:
    now = utcnow()
    with pytest.raises(KeyRingNotFoundError, match="authsvc keys generate"):
        await rotate(session_factory, encryptor, now=now)
    first = await generate(session_factory, encryptor, "EdDSA", now=now)
    with pytest.raises(KeyRingExistsError):
        await generate(session_factory, encryptor, "EdDSA", now=now)
    await rotate(session_factory, encryptor, "EdDSA", now=now, after=timedelta(0))

    async with store(session_factory, None) as keys:
        entry = await keys.retire(first.kid, now=now + S)
        with pytest.raises(KeyLifecycleError, match="publishes no key"):
            await keys.retire(first.kid, now=now + S)

    assert entry.stored_state is KeyState.RETIRED
    assert first.kid not in {row["kid"] for row in await rows(session_factory)}


async def test_concurrent_rotations_stage_exactly_one_key(
    session_factory: Sessions, encryptor: Encryptor
) -> None:
    now = utcnow()
    await generate(session_factory, encryptor, "EdDSA", now=now)

    outcomes = await asyncio.gather(
        *(rotate(session_factory, encryptor, "EdDSA", now=now) for _ in range(4)),
        return_exceptions=True,
    )

    refused = [outcome for outcome in outcomes if isinstance(outcome, KeyLifecycleError)]
    assert len(refused) == 3, outcomes
    assert sorted(str(row["state"]) for row in await rows(session_factory)) == ["active", "staged"]


# --- encryption ---------------------------------------------------------------------------


def private_material(key: SigningKey) -> list[bytes]:
    """Byte strings that would betray the private key: its PEM and DER forms in every usual
    encoding."""
    assert key.private_key is not None
    der = key.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = der[-32:]  # the tail of the private key structure (for RSA, part of the CRT values)
    return [
        b"PRIVATE KEY",
        der[:48],
        base64.b64encode(der)[:64],
        base64.b64encode(der)[-64:],
        body.hex().encode(),
        base64.urlsafe_b64encode(body).rstrip(b"="),
    ]


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_the_database_holds_no_private_key_in_clear(
    session_factory: Sessions, encryptor: Encryptor, algorithm: Algorithm, backend: str
) -> None:
    now = utcnow()
    await generate(session_factory, encryptor, algorithm, now=now)
    await rotate(session_factory, encryptor, algorithm, now=now)
    async with store(session_factory, encryptor) as keys:
        _revision, schedule = await keys.load(now)
    assert schedule is not None
    private_keys = [entry.key for entry in schedule.entries]
    assert all(key.private_key is not None for key in private_keys)

    # Every byte of the table, as a dump would show it.
    async with session_factory() as session:
        if backend == "postgresql":
            dump = await session.execute(text("SELECT signing_keys::text FROM signing_keys"))
        else:
            dump = await session.execute(
                text(
                    "SELECT quote(encrypted_private_key) || kid || public_key_pem || state "
                    "FROM signing_keys"
                )
            )
        table = "\n".join(str(value) for value in dump.scalars()).encode()

    assert b"BEGIN PUBLIC KEY" in table
    assert b"gAAAAA" in table  # Fernet tokens
    for key in private_keys:
        for material in private_material(key):
            assert material not in table


async def test_a_wrong_encryption_key_stops_the_start_with_a_clear_error(
    settings: Settings, session_factory: Sessions, encryptor: Encryptor
) -> None:
    await generate(session_factory, encryptor, now=utcnow())
    other = Fernet.generate_key().decode()

    keys = SigningKeys(database_settings(settings, key_encryption_key=other), session_factory)
    with pytest.raises(KeyConfigurationError, match="AUTH_KEY_ENCRYPTION_KEY") as refused:
        await keys.start()

    assert other not in str(refused.value)
    assert KEY.decode() not in str(refused.value)
    # With the list of an encryption-key rotation (the new key first, the old one still
    # listed) the ring reads.
    rotated = SigningKeys(
        database_settings(settings, key_encryption_key=f"{other},{KEY.decode()}"),
        session_factory,
    )
    await rotated.start()
    await rotated.close()


async def test_a_rotation_under_another_encryption_key_is_refused(
    session_factory: Sessions, encryptor: Encryptor
) -> None:
    now = utcnow()
    await generate(session_factory, encryptor, now=now)

    with pytest.raises(KeyConfigurationError, match="AUTH_KEY_ENCRYPTION_KEY"):
        await rotate(session_factory, Encryptor([Fernet.generate_key()]), now=now)

    assert len(await rows(session_factory)) == 1


async def test_a_private_key_moved_to_another_row_is_refused(
    session_factory: Sessions, encryptor: Encryptor
) -> None:
    now = utcnow()
    await generate(session_factory, encryptor, now=now)
    await rotate(session_factory, encryptor, now=now)
    async with session_factory() as session:
        await session.execute(
            text(
                "UPDATE signing_keys SET encrypted_private_key = "
                "(SELECT encrypted_private_key FROM signing_keys WHERE state = 'active') "
                "WHERE state = 'staged'"
            )
        )
        await session.commit()

    async with store(session_factory, encryptor) as keys:
        with pytest.raises(KeyConfigurationError, match="is another key"):
            await keys.load(now)


# --- a process's ring, kept current -------------------------------------------------------


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """Checks every 0.2 s, a JWKS cached for no time: a rotation may activate after 1 s."""
    return database_settings(
        settings,
        key_check_interval_seconds=0.2,
        jwks_max_age_seconds=0,
        key_publish_ahead_seconds=1,
    )


async def wait_for(condition: Callable[[], object], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


async def test_every_process_publishes_switches_and_settles_by_itself(
    fast_settings: Settings, session_factory: Sessions, encryptor: Encryptor
) -> None:
    old = await generate(session_factory, encryptor, now=utcnow())
    replicas = [SigningKeys(fast_settings, session_factory) for _ in range(3)]
    for replica in replicas:
        await replica.start()
    try:
        rotation = await rotate(session_factory, encryptor, now=utcnow(), after=S)
        new = rotation.current

        # Published by every replica before it signs...
        await wait_for(
            lambda: all(r.provider().current().verification_key(new.kid) for r in replicas), 0.9
        )
        assert utcnow() < rotation.activates_at
        assert {r.provider().current().signing_key.kid for r in replicas} == {old.kid}
        # ...signing from its time on, every replica by itself...
        await wait_for(lambda: utcnow() >= rotation.activates_at, 2)
        assert {r.provider().current().signing_key.kid for r in replicas} == {new.kid}
        # ...and the rows brought up to date by one of them, the old key kept public only.
        deadline = time.monotonic() + 3
        while True:
            stored = {row["kid"]: row for row in await rows(session_factory)}
            if stored[old.kid]["state"] == "retired":
                break
            assert time.monotonic() < deadline, "the ring was not settled"
            await asyncio.sleep(0.05)
        assert stored[old.kid]["encrypted_private_key"] is None
        assert all(r.provider().current().verification_key(old.kid) for r in replicas)
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_retired_key_stops_verifying_on_every_process(
    fast_settings: Settings, session_factory: Sessions, encryptor: Encryptor
) -> None:
    old = await generate(session_factory, encryptor, now=utcnow())
    await rotate(session_factory, encryptor, now=utcnow(), after=timedelta(0))
    replica = SigningKeys(fast_settings, session_factory)
    await replica.start()
    try:
        assert replica.provider().verification_key(old.kid) is not None

        async with store(session_factory, None) as keys:
            await keys.retire(old.kid, now=utcnow())

        await wait_for(lambda: replica.provider().current().verification_key(old.kid) is None, 2)
    finally:
        await replica.close()


async def test_processes_starting_together_on_an_empty_database_make_one_ring(
    settings: Settings, session_factory: Sessions
) -> None:
    development = database_settings(settings, jwt_keys_autogenerate=True)
    replicas = [SigningKeys(development, session_factory) for _ in range(3)]

    await asyncio.gather(*(replica.start() for replica in replicas))
    try:
        kids = {replica.provider().current().signing_key.kid for replica in replicas}
    finally:
        for replica in replicas:
            await replica.close()

    assert len(kids) == 1
    assert len(await rows(session_factory)) == 1


async def test_without_a_ring_in_the_database_the_start_is_refused(
    settings: Settings, session_factory: Sessions
) -> None:
    keys = SigningKeys(database_settings(settings), session_factory)

    with pytest.raises(KeyRingNotFoundError, match="authsvc keys import"):
        await keys.start()


# --- import -------------------------------------------------------------------------------


async def test_import_copies_a_directory_once_with_its_states(
    settings: Settings, session_factory: Sessions, encryptor: Encryptor, tmp_path: Path
) -> None:
    now = utcnow()
    directory = KeyDirectory(tmp_path / "ring")
    first = directory.generate("ES256", now=now - timedelta(hours=1))
    second = directory.rotate("ES256", 960, now=now - timedelta(seconds=30)).current
    staged = directory.rotate("EdDSA", 960, activate_after_seconds=600, now=now).current
    schedule = directory.load_schedule(now)

    outcomes = []
    for _ in range(2):
        async with store(session_factory, encryptor) as keys:
            outcomes.append(await keys.import_ring(schedule, now=now))

    assert outcomes == [ImportOutcome.IMPORTED, ImportOutcome.ALREADY_IMPORTED]
    stored = {row["kid"]: row for row in await rows(session_factory)}
    assert {kid: row["state"] for kid, row in stored.items()} == {
        first.kid: "retired",
        second.kid: "active",
        staged.kid: "staged",
    }
    assert stored[first.kid]["encrypted_private_key"] is None
    # A process with only the database and the encryption key signs as the directory did.
    replica = SigningKeys(database_settings(settings), session_factory)
    await replica.start()
    try:
        ring = replica.provider().current()
        assert ring.signing_key.kid == second.kid
        assert {key.kid for key in ring.keys} == {first.kid, second.kid, staged.kid}
        later = replica.provider().schedule.ring_at(now + timedelta(seconds=600))
        assert later.signing_key.kid == staged.kid
        assert later.signing_key.private_key is not None
    finally:
        await replica.close()


async def test_import_leaves_a_database_holding_another_ring_alone(
    session_factory: Sessions, encryptor: Encryptor, tmp_path: Path
) -> None:
    now = utcnow()
    existing = await generate(session_factory, encryptor, now=now)
    directory = KeyDirectory(tmp_path / "ring")
    directory.generate("ES256", now=now)

    async with store(session_factory, encryptor) as keys:
        with pytest.raises(KeyLifecycleError, match="another key ring"):
            await keys.import_ring(directory.load_schedule(now), now=now)

    assert [row["kid"] for row in await rows(session_factory)] == [existing.kid]
