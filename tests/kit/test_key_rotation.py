"""Key rotation as resource servers live through it: the live service issues tokens without a
pause while `authsvc keys rotate` runs, and two verifiers whose JWKS caches were warm before
the rotation check every one of them.

The verifiers are PyJWT's `PyJWKClient` and the project's kit, each caching the JWKS for its
`max-age` and neither allowed to refetch early on an unknown kid (PyJWT's cooldown is 60 s, the
kit's minimum interval between fetches is the max-age): they see a new key only when their
cached copy expires. A staged key is published longer than that before
it signs, so not one token fails. Rotating with `--now` (a compromised key) switches at once:
the same verifiers refuse new tokens until their copies expire, which is the price of `--now`
and the proof that the harness sees failures when there are some. `keys retire` then takes
the compromised key out at once.

Timings are shrunk so that each test takes seconds: JWKS max-age 4 s, checks every 0.5 s,
keys published 5 s ahead (the least the settings allow: max-age + check interval).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_session_factory
from app.security.encryption import key_encryption_setting, load_encryptor
from app.security.keys.directory import KeyDirectory
from app.security.keys.lifecycle import retirement_period
from app.services.tokens.signing_keys import DatabaseKeyStore
from authsvc_kit import JWKSCache, TokenVerifier
from tests.support.cli import AUTHSVC
from tests.support.databases import ResetDatabase
from tests.support.flows import bearer, register, sign_in
from tests.support.live_server import LiveService, start_service

MAX_AGE = 4
CHECK_INTERVAL = 0.5
AHEAD = 5
AUDIENCE = "authsvc"
NO_EARLY_REFETCH = 60  # longer than any of these tests


@pytest.fixture(params=["directory", "database"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rotation_settings(settings: Settings, store: str, tmp_path: Path, backend: str) -> Settings:
    """The service with a ring of its own in `store`, and rotation timings in seconds."""
    if store == "directory" and backend == "sqlite":
        pytest.skip("the directory key store never reads the database: PostgreSQL's run covers it")
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "keys_dir": tmp_path / "keys",
            "key_store": store,
            "key_encryption_key": SecretStr(Fernet.generate_key().decode()),
            "jwks_max_age_seconds": MAX_AGE,
            "key_check_interval_seconds": CHECK_INTERVAL,
            "key_publish_ahead_seconds": AHEAD,
        }
    )


@pytest.fixture
async def live(
    rotation_settings: Settings, reset_database: ResetDatabase
) -> AsyncIterator[LiveService]:
    service = await start_service(rotation_settings)
    try:
        yield service
    finally:
        await service.stop()
        await reset_database()


def keys_command(live: LiveService, *args: str) -> subprocess.CompletedProcess[str]:
    """`authsvc keys ...` as an operator runs it, against the live service's key store."""
    settings = live.settings
    assert settings.key_encryption_key is not None
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTH_")}
    env |= {
        "AUTH_DATABASE_URL": settings.database_url,
        "AUTH_KEYS_DIR": str(settings.keys_dir),
        "AUTH_KEY_STORE": settings.key_store,
        "AUTH_KEY_ENCRYPTION_KEY": settings.key_encryption_key.get_secret_value(),
        "AUTH_KEY_PUBLISH_AHEAD_SECONDS": str(AHEAD),
        "AUTH_JWKS_MAX_AGE_SECONDS": str(MAX_AGE),
        "AUTH_KEY_CHECK_INTERVAL_SECONDS": str(CHECK_INTERVAL),
    }
    result = subprocess.run(
        [AUTHSVC, "keys", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


@dataclass
class Verifiers:
    """Two resource servers' verifiers of the live service's tokens, and what they said."""

    live: LiveService
    http: httpx.AsyncClient
    pyjwt: jwt.PyJWKClient = field(init=False)
    kit: TokenVerifier = field(init=False)
    failures: dict[str, list[tuple[str, str]]] = field(
        default_factory=lambda: {"pyjwt": [], "kit": []}
    )
    verified: int = 0

    def __post_init__(self) -> None:
        url = f"{self.live.url}/.well-known/jwks.json"
        self.pyjwt = jwt.PyJWKClient(url, lifespan=MAX_AGE, cooldown_duration=NO_EARLY_REFETCH)
        # The kit's minimum interval bounds every fetch; at max-age it never fetches early.
        cache = JWKSCache(url, http_client=self.http, max_age=MAX_AGE, min_refetch_interval=MAX_AGE)
        self.kit = TokenVerifier(self.live.url, AUDIENCE, cache)

    def _pyjwt_verify(self, token: str) -> dict[str, Any]:
        key = self.pyjwt.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=AUDIENCE,
            issuer=self.live.url,
        )
        return claims

    async def check(self, token: str) -> None:
        """Verify `token` with both; a refusal is recorded, not raised."""
        kid = jwt.get_unverified_header(token)["kid"]
        try:
            await asyncio.to_thread(self._pyjwt_verify, token)
        except jwt.PyJWTError as error:
            self.failures["pyjwt"].append((kid, repr(error)))
        try:
            await self.kit.verify(token)
        except Exception as error:
            self.failures["kit"].append((kid, repr(error)))
        self.verified += 1


@pytest.fixture
async def verifiers(live: LiveService) -> AsyncIterator[Verifiers]:
    async with httpx.AsyncClient() as http:
        yield Verifiers(live, http)


async def issue_and_verify(
    service: httpx.AsyncClient, verifiers: Verifiers, until: asyncio.Event, kids: list[str]
) -> None:
    """Sign in again and again (a token every few tens of milliseconds) until `until` is set,
    and have every token verified."""
    while not until.is_set():
        token = (await sign_in(service))["access_token"]
        kids.append(jwt.get_unverified_header(token)["kid"])
        await verifiers.check(token)
        await asyncio.sleep(0.02)


async def test_every_token_verifies_across_a_rotation(
    live: LiveService, verifiers: Verifiers
) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as service:
        await register(service)
        first = (await sign_in(service))["access_token"]
        await verifiers.check(first)  # both caches warm, before the rotation
        old_kid = jwt.get_unverified_header(first)["kid"]
        kids: list[str] = []
        stop = asyncio.Event()
        issuing = asyncio.create_task(issue_and_verify(service, verifiers, stop, kids))
        try:
            rotated = await asyncio.to_thread(keys_command, live, "rotate")
            # Go on until the new key has signed for longer than any cached JWKS lives.
            deadline = time.monotonic() + 40
            switched_at = None
            while switched_at is None or time.monotonic() - switched_at < MAX_AGE + 1:
                if switched_at is None and kids and kids[-1] != old_kid:
                    switched_at = time.monotonic()
                assert time.monotonic() < deadline, "the staged key never signed"
                assert not issuing.done(), issuing
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await issuing

    new_kid = kids[-1]
    assert new_kid in rotated.stdout
    assert old_kid in kids  # tokens of both keys were issued and checked
    assert kids.index(new_kid) > 0
    assert kids[kids.index(new_kid) :] == [new_kid] * len(kids[kids.index(new_kid) :])
    assert verifiers.verified == len(kids) + 1
    assert verifiers.failures == {"pyjwt": [], "kit": []}


async def test_a_compromised_key_is_replaced_now_and_retired_at_once(
    live: LiveService, verifiers: Verifiers, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as service:
        await register(service)
        compromised = (await sign_in(service))["access_token"]
        await verifiers.check(compromised)  # both caches warm
        old_kid = jwt.get_unverified_header(compromised)["kid"]

        # `keys rotate --now`, done in-process so that it lands while the caches are warm.
        await rotate_now(live, engine)
        kids: list[str] = []
        stop = asyncio.Event()
        issuing = asyncio.create_task(issue_and_verify(service, verifiers, stop, kids))
        await asyncio.sleep(MAX_AGE + 2 * CHECK_INTERVAL + 1)
        stop.set()
        await issuing
        new_kid = kids[-1]
        still_accepted = await service.get("/users/me", headers=bearer(compromised))

        retired = await asyncio.to_thread(keys_command, live, "retire", old_kid)
        await asyncio.sleep(2 * CHECK_INTERVAL + 0.5)
        refused = await service.get("/users/me", headers=bearer(compromised))
        published = {
            jwk["kid"] for jwk in (await service.get("/.well-known/jwks.json")).json()["keys"]
        }
        fresh = (await sign_in(service))["access_token"]
        accepted = await service.get("/users/me", headers=bearer(fresh))

    # `--now`: new tokens at once; warm caches refuse them until they expire, then all is well.
    assert new_kid != old_kid
    for name, failures in verifiers.failures.items():
        assert failures, f"{name} never refused a token of the new key"
        assert {kid for kid, _error in failures} == {new_kid}
    late = kids[-5:]
    assert late == [new_kid] * 5
    # The compromised key verified until retired, and not a moment after.
    assert still_accepted.status_code == 200
    assert old_kid in retired.stdout
    assert refused.status_code == 401
    assert published == {new_kid}
    assert accepted.status_code == 200


async def rotate_now(live: LiveService, engine: AsyncEngine) -> None:
    """What `authsvc keys rotate --now` does, in the test's own process (the command takes
    seconds to start, longer than the verifiers' caches stay warm)."""
    settings = live.settings
    now = datetime.now(UTC)
    retire_for = retirement_period(settings.access_token_ttl_seconds)
    if settings.key_store == "directory":
        KeyDirectory(settings.keys_dir).rotate(
            settings.jwt_algorithm, retire_for.total_seconds(), now=now
        )
        return
    encryptor = load_encryptor(settings, key_encryption_setting(settings))
    async with create_session_factory(engine)() as session:
        await DatabaseKeyStore(session, encryptor).rotate(
            settings.jwt_algorithm, now=now, activate_after=timedelta(0), retire_for=retire_for
        )
