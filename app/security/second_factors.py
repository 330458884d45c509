"""The second factors' secrets: TOTP (RFC 6238) shared secrets and codes, and recovery codes.

TOTP follows what every authenticator app does by default: SHA-1, 6 digits, 30-second steps;
a code of the step before or after the current one is accepted too (clock drift, a code typed
as it rolled over). Recovery codes are 80 random bits each, shown once and kept as digests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Final

import pyotp

TOTP_DIGITS: Final = 6
TOTP_STEP_SECONDS: Final = 30
# Steps either side of the current one whose codes are accepted.
TOTP_DRIFT_STEPS: Final = 1

RECOVERY_CODE_COUNT: Final = 10
# 16 base32 characters = 80 bits: no guessing budget gets anywhere near, and a fast digest of
# them cannot be reversed from a stolen database.
_RECOVERY_CODE_LENGTH: Final = 16
_RECOVERY_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"


def new_totp_secret() -> str:
    """A fresh 160-bit shared secret, base32 (RFC 4226 recommends 160 bits)."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, *, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI that authenticator apps read from a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def totp_step(now: datetime) -> int:
    """The RFC 6238 time step `now` falls in."""
    return int(now.timestamp()) // TOTP_STEP_SECONDS


def totp_code(secret: str, step: int) -> str:
    """The code of `step` (what an authenticator app shows during that step)."""
    return pyotp.TOTP(secret).generate_otp(step)


def matching_totp_step(
    secret: str, code: str, now: datetime, *, after_step: int | None = None
) -> int | None:
    """The time step whose code `code` is, within one step of `now`'s, or None.

    Steps at or before `after_step` (the last step accepted) never match: a code is good once,
    and an older code stops working once a newer one was used. Every candidate is compared in
    constant time.
    """
    typed = "".join(code.split())
    if len(typed) != TOTP_DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    current = totp_step(now)
    found = None
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        matches = hmac.compare_digest(totp_code(secret, step), typed)
        if matches and (after_step is None or step > after_step) and found is None:
            found = step
    return found


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """`count` fresh recovery codes, as shown to the user: `xxxx-xxxx-xxxx-xxxx`."""
    return [_format(_random_code()) for _ in range(count)]


def normalize_recovery_code(code: str) -> str:
    """What a typed recovery code is compared as: case, whitespace (a pasted newline, a
    non-breaking space) and hyphens do not matter, as for TOTP codes."""
    return "".join(
        character for character in code.lower() if not character.isspace() and character != "-"
    )


def recovery_code_digest(code: str) -> str:
    """The stored SHA-256 digest of a (typed or generated) recovery code."""
    return hashlib.sha256(normalize_recovery_code(code).encode("utf-8")).hexdigest()


def recovery_code_digests(codes: Iterable[str]) -> list[str]:
    return [recovery_code_digest(code) for code in codes]


def _random_code() -> str:
    return "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_CODE_LENGTH))


def _format(code: str) -> str:
    return "-".join(code[start : start + 4] for start in range(0, len(code), 4))
