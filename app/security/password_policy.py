"""Which passwords may be set: NIST SP 800-63B-4 rules, no composition rules.

A password is refused when it is too short or too long, one repeated character, on the
shipped list of common passwords, or built from the account's email address or username.
Comparisons are made on the NFKC-normalised, case-folded password, so full-width or
differently cased variants of a refused password are refused too.
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Self

from app.config import Settings
from app.services.errors import InvalidInput

# NIST SP 800-63B-4: never below 8, and at least 64 characters must be allowed.
MIN_LENGTH_FLOOR = 8
MAX_LENGTH_FLOOR = 64
# Shorter identifiers would refuse too much by containment ("bob" in "bobsleigh...").
MIN_EMAIL_LOCAL_PART_LENGTH = 4
MIN_USERNAME_LENGTH = 3

COMMON_PASSWORDS_FILE = "common-passwords.txt.gz"


class WeakPassword(InvalidInput):
    """The password breaks the policy; `reasons` lists each rule it breaks."""

    default_detail = "The password is not acceptable."

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(" ".join(reasons) or None)
        self.reasons = list(reasons)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped common-password list (see `data/README.md`), normalised and case-folded."""
    packed = (resources.files("app.security") / "data" / COMMON_PASSWORDS_FILE).read_bytes()
    lines = gzip.decompress(packed).decode("utf-8").splitlines()
    return frozenset(_fold(line) for line in lines if line.strip())


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Length bounds in Unicode code points, plus the list and identifier rules."""

    min_length: int = 15
    max_length: int = 1024

    def __post_init__(self) -> None:
        if self.min_length < MIN_LENGTH_FLOOR:
            raise ValueError(f"min_length must be at least {MIN_LENGTH_FLOOR}")
        if self.max_length < max(MAX_LENGTH_FLOOR, self.min_length):
            raise ValueError(f"max_length must be at least {MAX_LENGTH_FLOOR} and min_length")

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(min_length=settings.password_min_length, max_length=settings.password_max_length)

    def problems(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> list[str]:
        """Every reason to refuse `password`, as sentences for the user; empty if acceptable."""
        # Counted as received and before any other work: cheap, and the same count the
        # sign-in path caps, so a password accepted here is never refused at sign-in.
        if len(password) > self.max_length:
            return [f"Use at most {self.max_length} characters."]

        reasons: list[str] = []
        if not _is_encodable(password):
            reasons.append("The password contains characters that cannot be stored.")
        normalized = unicodedata.normalize("NFKC", password)
        # Counted after NFKC, which joins combining sequences ("e" + accent is one character),
        # but never longer than typed: NFKC also expands ligatures (U+FDFA becomes 18
        # characters), which must not make one keystroke pass a 15-character minimum.
        if min(len(password), len(normalized)) < self.min_length:
            reasons.append(f"Use at least {self.min_length} characters.")
        folded = normalized.casefold()
        if len(set(folded)) == 1:
            reasons.append("Do not repeat a single character.")
        if folded in common_passwords():
            reasons.append("This password is too common; choose another.")
        if email and _uses_email(folded, _fold(email)):
            reasons.append("Do not use your email address in the password.")
        if username and _uses_username(folded, _fold(username)):
            reasons.append("Do not use your username in the password.")
        return reasons

    def check(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> None:
        """Raise `WeakPassword` with every reason if `password` may not be set."""
        reasons = self.problems(password, email=email, username=username)
        if reasons:
            raise WeakPassword(reasons)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text.strip()).casefold()


def _is_encodable(password: str) -> bool:
    # A JSON body can carry lone surrogates; they have no UTF-8 form, so they cannot be hashed.
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _uses_email(folded_password: str, folded_email: str) -> bool:
    local_part = folded_email.rpartition("@")[0]
    if len(local_part) >= MIN_EMAIL_LOCAL_PART_LENGTH and local_part in folded_password:
        return True
    return folded_email in folded_password


def _uses_username(folded_password: str, folded_username: str) -> bool:
    return len(folded_username) >= MIN_USERNAME_LENGTH and folded_username in folded_password
