"""Password hashing: argon2id through passlib, legacy bcrypt verified and upgraded, off the loop.

Passwords are hashed NFKC-normalised, so "café" typed as one precomposed "é" or as "e" plus a
combining accent (macOS, some keyboards), or in full-width forms, is the same password.
Hashes made before normalisation (of the password as typed) still verify, and are replaced.

Every hash and verification runs on a dedicated pool of `workers` threads, so a burst of
logins queues for CPU instead of stalling the event loop. The pool's threads run at a lower
CPU priority than the event loop: hashing is throughput work and takes whatever CPU is idle,
while token checks, which are latency work, are served first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Self, TypeVar, TypeVarTuple

from passlib.context import CryptContext

from app.config import Settings

T = TypeVar("T")
Args = TypeVarTuple("Args")

# bcrypt reads only the first 72 bytes of a password. A longer one must never match: the
# rest of it would be ignored, so a prefix would be as good as the whole password.
BCRYPT_MAX_PASSWORD_BYTES = 72

# Added to the nice value of each hashing thread (Linux applies nice per thread). At +19 the
# scheduler gives the event loop's thread ~98% of a contended core; idle CPU still goes to hashing.
HASH_THREAD_NICENESS = 19


def _usable_cpus() -> int:
    # The CPUs this process may run on (taskset, cgroups cpusets), not all the machine has:
    # more hashing threads than usable cores only makes them evict each other's memory.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _lower_thread_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """The cost of new argon2id hashes, named as in argon2-cffi's `PasswordHasher`."""

    memory_cost_kib: int
    time_cost: int
    parallelism: int
    hash_len: int = 32
    salt_len: int = 16

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            memory_cost_kib=settings.argon2_memory_cost_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )


class PasswordHasher:
    """Hashes new passwords with argon2id; verifies argon2 and legacy bcrypt hashes.

    Passwords are NFKC-normalised, never length-checked: callers apply `PasswordPolicy` when
    a password is set and refuse inputs over `password_max_length` before verifying, so no one
    can make the service hash megabytes.
    """

    def __init__(self, parameters: Argon2Parameters, *, workers: int | None = None) -> None:
        """Build the hasher; computes one dummy hash, so construction costs one hash."""
        self._parameters = parameters
        self._workers = workers or _usable_cpus()
        self._executor = ThreadPoolExecutor(
            max_workers=self._workers,
            thread_name_prefix="password-hash",
            initializer=_lower_thread_priority,
        )
        self._context = CryptContext(
            schemes=["argon2", "bcrypt"],
            default="argon2",
            # Deprecated: still verified, but a successful verification yields an argon2id hash.
            deprecated=["bcrypt"],
            argon2__type="ID",
            argon2__memory_cost=parameters.memory_cost_kib,
            argon2__rounds=parameters.time_cost,
            argon2__parallelism=parameters.parallelism,
            argon2__digest_size=parameters.hash_len,
            argon2__salt_size=parameters.salt_len,
        )
        # Verified in place of a real hash for unknown users and accounts without a usable
        # hash, so those failures take as long as a wrong password. Nobody knows its password.
        self._dummy_hash: str = self._context.hash(secrets.token_urlsafe(32))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(Argon2Parameters.from_settings(settings), workers=settings.password_hash_workers)

    @property
    def argon2_parameters(self) -> Argon2Parameters:
        """The parameters of new hashes; hashes with any others are upgraded on login."""
        return self._parameters

    @property
    def workers(self) -> int:
        """How many hashes or verifications may run at the same time."""
        return self._workers

    async def hash(self, password: str) -> str:
        """A new salted argon2id hash of `password`.

        Raises `ValueError` if the password cannot be encoded as UTF-8 (lone surrogates);
        `PasswordPolicy` refuses such passwords first.
        """
        return await self._run(self._hash_sync, password)

    async def verify_and_update(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """Check `password` against a stored hash: `(matches, replacement_hash_or_None)`.

        The replacement is set only on a match whose stored hash is bcrypt, argon2 with other
        parameters, or of the password as typed rather than NFKC-normalised. A missing
        (`None`) or unrecognised hash never matches and costs a dummy verification (two when
        NFKC changes `password`, like a wrong one); this never raises for any stored value or
        password.
        """
        return await self._run(self._verify_and_update_sync, password, hashed)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verification, for sign-ins naming no known account."""
        await self._run(self._verify_dummy_sync, password)

    def close(self) -> None:
        """Stop the hashing threads once the work queued so far is done."""
        self._executor.shutdown(wait=True)

    async def _run(self, function: Callable[[*Args], T], *args: *Args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _hash_sync(self, password: str) -> str:
        hashed: str = self._context.hash(normalize_password(password))
        return hashed

    def _verify_and_update_sync(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        scheme = self._context.identify(hashed, required=False) if hashed else None
        if hashed is None or scheme is None:
            self._verify_dummy_sync(password)
            return False, None
        normalized = normalize_password(password)
        matches, new_hash = self._verify_one(normalized, hashed, scheme)
        if matches or normalized == password:
            return matches, new_hash
        # A hash from before normalisation holds the password as it was typed then. Only
        # input that NFKC changes pays this second check (the dummy path pays it too).
        if self._verify_one(password, hashed, scheme)[0]:
            return True, self._hash_sync(normalized)
        return False, None

    def _verify_one(self, password: str, hashed: str, scheme: str) -> tuple[bool, str | None]:
        if scheme == "bcrypt" and _utf8_length(password) > BCRYPT_MAX_PASSWORD_BYTES:
            # The modern bcrypt package refuses such input and older code paths truncated
            # it; decide here. A fixed secret against the same hash costs exactly what the
            # real check would, so the refusal is not visible in the response time.
            self._spend_time_on(hashed)
            return False, None
        try:
            matches, new_hash = self._context.verify_and_update(password, hashed)
        except ValueError:
            # A malformed hash behind a known prefix, or a password the scheme cannot take
            # (NUL for bcrypt, lone surrogates for any): no match, and no error either.
            self._verify_once_against_dummy(password)
            return False, None
        return bool(matches), new_hash

    def _verify_dummy_sync(self, password: str) -> None:
        # As many verifications as a wrong password for a real account: two when NFKC
        # changes the input, so unknown accounts stay indistinguishable for such input too.
        normalized = normalize_password(password)
        self._verify_once_against_dummy(normalized)
        if normalized != password:
            self._verify_once_against_dummy(password)

    def _verify_once_against_dummy(self, password: str) -> None:
        # Bytes with surrogatepass: the dummy must not fail on passwords the real check can't
        # encode, or the failure would be faster than a wrong password.
        self._context.verify(password.encode("utf-8", "surrogatepass"), self._dummy_hash)

    def _spend_time_on(self, hashed: str) -> None:
        try:
            self._context.verify(b"-", hashed)
        except ValueError:
            self._verify_once_against_dummy("")


def normalize_password(password: str) -> str:
    """The form passwords are hashed in: NFKC, so every way of typing the same characters
    (precomposed or combining accents, full-width or compatibility forms) is one password."""
    return unicodedata.normalize("NFKC", password)


def _utf8_length(password: str) -> int:
    return len(password.encode("utf-8", "surrogatepass"))
