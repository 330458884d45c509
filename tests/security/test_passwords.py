"""PasswordHasher: argon2id hashes, legacy bcrypt, upgrades, dummy work, and the thread pool."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

import argon2
import bcrypt
import pytest
from passlib.context import CryptContext

from app.config import Settings
from app.security.passwords import HASH_THREAD_NICENESS, Argon2Parameters, PasswordHasher

# Cheap enough that a test hashes in about a millisecond; the defaults get their own test.
CHEAP = Argon2Parameters(memory_cost_kib=1024, time_cost=1, parallelism=1)
PASSWORD = "tangerine kayak on a quiet lake"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(CHEAP, workers=2)


def bcrypt_hash(password: str | bytes, rounds: int = 4) -> str:
    secret = password.encode() if isinstance(password, str) else password
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=rounds)).decode()


def argon2_cffi_hash(password: str, **parameters: Any) -> str:
    return argon2.PasswordHasher(**parameters).hash(password)


async def fastest_timings(
    *actions: Callable[[], Awaitable[object]], rounds: int = 5
) -> list[float]:
    """Each action's quickest run. Load only ever adds time, and running the actions in
    turns lets a burst of load slow them all alike, so the minimums are comparable."""
    fastest = [float("inf")] * len(actions)
    for _ in range(rounds):
        for index, action in enumerate(actions):
            started = time.perf_counter()
            await action()
            fastest[index] = min(fastest[index], time.perf_counter() - started)
    return fastest


# --- hashing -----------------------------------------------------------------------------


async def test_hash_is_argon2id_with_the_configured_parameters(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)

    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_hashing_the_same_password_twice_gives_differently_salted_hashes(
    hasher: PasswordHasher,
) -> None:
    first = await hasher.hash(PASSWORD)
    second = await hasher.hash(PASSWORD)

    assert first != second
    assert first.split("$")[4] != second.split("$")[4]  # the salt field


async def test_default_settings_hash_with_argon2id_m19456_t2_p1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AUTH_ARGON2_MEMORY_COST_KIB", "AUTH_ARGON2_TIME_COST", "AUTH_ARGON2_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)
    hasher = PasswordHasher.from_settings(Settings(_env_file=None))

    hashed = await hasher.hash(PASSWORD)

    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.argon2_parameters == Argon2Parameters(
        memory_cost_kib=19456, time_cost=2, parallelism=1
    )
    assert await hasher.verify_and_update(PASSWORD, hashed) == (True, None)


async def test_argon2_cffi_given_the_exposed_parameters_makes_interchangeable_hashes(
    hasher: PasswordHasher,
) -> None:
    parameters = hasher.argon2_parameters
    raw = argon2.PasswordHasher(
        time_cost=parameters.time_cost,
        memory_cost=parameters.memory_cost_kib,
        parallelism=parameters.parallelism,
        hash_len=parameters.hash_len,
        salt_len=parameters.salt_len,
        type=argon2.Type.ID,
    )

    assert await hasher.verify_and_update(PASSWORD, raw.hash(PASSWORD)) == (True, None)
    assert raw.verify(await hasher.hash(PASSWORD), PASSWORD)


def test_worker_count_comes_from_settings_or_defaults_to_the_cpu_count() -> None:
    settings = Settings(
        _env_file=None, argon2_memory_cost_kib=1024, argon2_time_cost=1, password_hash_workers=3
    )

    assert PasswordHasher.from_settings(settings).workers == 3
    assert PasswordHasher(CHEAP).workers == len(os.sched_getaffinity(0))


# --- verification ------------------------------------------------------------------------


async def test_right_password_matches_without_an_update(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)

    assert await hasher.verify_and_update(PASSWORD, hashed) == (True, None)


async def test_wrong_password_does_not_match(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)

    assert await hasher.verify_and_update(PASSWORD + "!", hashed) == (False, None)


async def test_bcrypt_hash_verifies_and_is_replaced_by_argon2id(hasher: PasswordHasher) -> None:
    matches, new_hash = await hasher.verify_and_update(PASSWORD, bcrypt_hash(PASSWORD))

    assert matches is True
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify_and_update(PASSWORD, new_hash) == (True, None)


async def test_wrong_password_against_bcrypt_hash_neither_matches_nor_upgrades(
    hasher: PasswordHasher,
) -> None:
    stored = bcrypt_hash(PASSWORD)

    assert await hasher.verify_and_update("not " + PASSWORD, stored) == (False, None)


@pytest.mark.parametrize(
    ("prefix", "extra"),
    [("a" * 72, "b"), ("é" * 36, "é"), ("😀" * 18, "x")],
    ids=["ascii", "two-byte", "four-byte"],
)
async def test_bcrypt_never_matches_a_password_longer_than_72_bytes(
    hasher: PasswordHasher, prefix: str, extra: str
) -> None:
    assert len(prefix.encode()) == 72
    stored = bcrypt_hash(prefix)
    matches, _ = await hasher.verify_and_update(prefix, stored)
    assert matches is True  # the 72-byte password itself is fine

    assert await hasher.verify_and_update(prefix + extra, stored) == (False, None)


async def test_overlong_password_against_bcrypt_still_costs_a_bcrypt_computation(
    hasher: PasswordHasher,
) -> None:
    # bcrypt cost 9 takes ~30 ms, some twenty times the cheap argon2 dummy: a refusal that
    # skipped the work (or fell back to the dummy) would be visibly faster.
    stored = bcrypt_hash("a" * 72, rounds=9)

    wrong, overlong = await fastest_timings(
        lambda: hasher.verify_and_update("b" * 20, stored),
        lambda: hasher.verify_and_update("a" * 73, stored),
    )

    assert overlong >= 0.3 * wrong


@pytest.mark.parametrize(
    "outdated",
    [
        argon2_cffi_hash(PASSWORD, memory_cost=512, time_cost=1, parallelism=1),
        argon2_cffi_hash(PASSWORD, memory_cost=1024, time_cost=2, parallelism=1),
        argon2_cffi_hash(PASSWORD, memory_cost=1024, time_cost=1, parallelism=2),
        argon2_cffi_hash(
            PASSWORD, memory_cost=1024, time_cost=1, parallelism=1, type=argon2.Type.I
        ),
    ],
    ids=["less-memory", "more-rounds", "more-lanes", "argon2i"],
)
async def test_argon2_hash_with_other_parameters_is_upgraded_on_a_match(
    hasher: PasswordHasher, outdated: str
) -> None:
    matches, new_hash = await hasher.verify_and_update(PASSWORD, outdated)

    assert matches is True
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify_and_update("wrong", outdated) == (False, None)


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "garbage",
        "$argon2id$junk",
        "$argon2id$v=19$m=1024,t=1,p=1$!!!$!!!",
        "$2b$12$tooshort",
        "$1$md5crypt$notsupportedhere",
    ],
)
async def test_missing_or_unreadable_hash_never_matches_and_never_raises(
    hasher: PasswordHasher, stored: str | None
) -> None:
    assert await hasher.verify_and_update(PASSWORD, stored) == (False, None)


@pytest.mark.parametrize("password", ["nul\x00inside", "lone \ud800 surrogate"])
async def test_password_bcrypt_cannot_take_never_matches_and_never_raises(
    hasher: PasswordHasher, password: str
) -> None:
    assert await hasher.verify_and_update(password, bcrypt_hash(PASSWORD)) == (False, None)


async def test_password_without_utf8_form_never_matches_and_never_raises(
    hasher: PasswordHasher,
) -> None:
    stored = await hasher.hash(PASSWORD)

    assert await hasher.verify_and_update("lone \ud800 surrogate", stored) == (False, None)
    assert await hasher.verify_and_update("lone \ud800 surrogate", None) == (False, None)
    await hasher.verify_dummy("lone \ud800 surrogate")


async def test_hashing_a_password_without_utf8_form_is_refused(hasher: PasswordHasher) -> None:
    with pytest.raises(ValueError, match="surrogate"):
        await hasher.hash("lone \ud800 surrogate")


async def test_failures_without_a_usable_hash_cost_as_much_as_a_wrong_password() -> None:
    # Costly enough (~10 ms) that skipping the dummy verification would show.
    hasher = PasswordHasher(
        Argon2Parameters(memory_cost_kib=8192, time_cost=2, parallelism=1), workers=1
    )
    stored = await hasher.hash(PASSWORD)

    wrong, no_hash, garbled, unknown_user = await fastest_timings(
        lambda: hasher.verify_and_update("wrong", stored),
        lambda: hasher.verify_and_update("wrong", None),
        lambda: hasher.verify_and_update("wrong", "$argon2id$junk"),
        lambda: hasher.verify_dummy("wrong"),
    )

    assert no_hash >= 0.3 * wrong
    assert garbled >= 0.3 * wrong
    assert unknown_user >= 0.3 * wrong


# --- normalisation -----------------------------------------------------------------------

CAFE_NFC = unicodedata.normalize("NFC", "un café crème sur la terrasse")
CAFE_NFD = unicodedata.normalize("NFD", CAFE_NFC)


@pytest.mark.parametrize(
    ("chosen", "typed"),
    [
        (CAFE_NFC, CAFE_NFD),
        (CAFE_NFD, CAFE_NFC),
        ("quince!kayak!ox", "".join(chr(ord(c) + 0xFEE0) for c in "quince!kayak!ox")),
    ],
    ids=["nfc-then-nfd", "nfd-then-nfc", "full-width"],
)
async def test_every_unicode_spelling_of_a_password_is_the_same_password(
    hasher: PasswordHasher, chosen: str, typed: str
) -> None:
    assert chosen != typed

    assert await hasher.verify_and_update(typed, await hasher.hash(chosen)) == (True, None)


@pytest.mark.parametrize(
    "old_hash",
    [
        lambda password: argon2_cffi_hash(password, memory_cost=1024, time_cost=1, parallelism=1),
        bcrypt_hash,
    ],
    ids=["argon2id", "bcrypt"],
)
async def test_a_hash_of_the_password_as_typed_still_verifies_and_is_replaced_normalised(
    hasher: PasswordHasher, old_hash: Callable[[str], str]
) -> None:
    stored = old_hash(CAFE_NFD)  # made before passwords were normalised

    matches, new_hash = await hasher.verify_and_update(CAFE_NFD, stored)

    assert matches is True
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    # The replacement holds the normalised password: both spellings match it, unchanged.
    assert await hasher.verify_and_update(CAFE_NFC, new_hash) == (True, None)
    assert await hasher.verify_and_update(CAFE_NFD, new_hash) == (True, None)
    assert await hasher.verify_and_update(CAFE_NFD + "!", stored) == (False, None)


async def test_an_unknown_account_costs_as_many_verifications_as_a_wrong_password(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Input NFKC changes is checked twice against a real hash (normalised, then as typed);
    # the dummy for an unknown account must do as much, or timing would tell them apart.
    stored = await hasher.hash(PASSWORD)
    verifications = 0
    real_verify, real_verify_and_update = CryptContext.verify, CryptContext.verify_and_update

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            nonlocal verifications
            verifications += 1
            return real(*args, **kwargs)

        return run

    monkeypatch.setattr(CryptContext, "verify", counted(real_verify))
    monkeypatch.setattr(CryptContext, "verify_and_update", counted(real_verify_and_update))

    async def count(action: Awaitable[object]) -> int:
        nonlocal verifications
        verifications = 0
        await action
        return verifications

    for typed in (CAFE_NFC, CAFE_NFD):
        wrong = await count(hasher.verify_and_update(typed + "!", stored))
        assert await count(hasher.verify_dummy(typed + "!")) == wrong
        assert await count(hasher.verify_and_update(typed + "!", None)) == wrong
    assert wrong == 2  # the NFD spelling: normalised, then as typed


# --- the thread pool ---------------------------------------------------------------------


async def test_hashing_runs_off_the_event_loop() -> None:
    hasher = PasswordHasher(
        Argon2Parameters(memory_cost_kib=19456, time_cost=2, parallelism=1), workers=1
    )
    ticks = 0

    async def tick_every_millisecond() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    ticker = asyncio.create_task(tick_every_millisecond())
    started = time.perf_counter()
    try:
        await asyncio.gather(*(hasher.hash(f"{PASSWORD} {n}") for n in range(4)))
    finally:
        ticker.cancel()
    elapsed_ms = (time.perf_counter() - started) * 1000

    # Hashing on the loop would leave the ticker a handful of turns in total; off the loop
    # it keeps ticking, at worst every few milliseconds on a busy machine.
    assert elapsed_ms >= 40
    assert ticks >= max(10, elapsed_ms / 10)


@pytest.mark.parametrize("workers", [1, 3])
async def test_no_more_hashes_run_at_once_than_there_are_workers(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    hasher = PasswordHasher(CHEAP, workers=workers)
    lock = threading.Lock()
    running = 0
    most_at_once = 0
    real_hash = CryptContext.hash

    def counting_hash(self: CryptContext, secret: str, **kwargs: Any) -> str:
        nonlocal running, most_at_once
        with lock:
            running += 1
            most_at_once = max(most_at_once, running)
        try:
            time.sleep(0.05)  # hold the slot long enough for every other call to want one
            result: str = real_hash(self, secret, **kwargs)
            return result
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(CryptContext, "hash", counting_hash)

    await asyncio.gather(*(hasher.hash(f"{PASSWORD} {n}") for n in range(6)))

    assert most_at_once == workers


async def test_hashing_threads_yield_the_cpu_to_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = PasswordHasher(CHEAP, workers=1)
    loop_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def record_priority(password: str) -> str:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return "hashed"

    monkeypatch.setattr(hasher, "_hash_sync", record_priority)
    await hasher.hash("any password at all")

    assert seen == [loop_priority + HASH_THREAD_NICENESS]
    hasher.close()
