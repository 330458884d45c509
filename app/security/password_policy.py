"""Which passwords may be set: NIST SP 800-63B-4 rules, no composition rules.

A password is refused when it is too short or too long, one repeated character, on the
shipped list of common passwords, built from the account's email address or username, or
estimated to fall to fewer than `min_guesses` guesses by an attacker who knows this service's
name, the account's email address and username and the configured context words.
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
from app.errors import InvalidInput
from app.security.password_strength import (
    GENERIC_WARNING,
    SUGGESTION,
    estimate_guesses,
    is_encodable,
    words_from,
)

# NIST SP 800-63B-4: never below 8, and at least 64 characters must be allowed.
MIN_LENGTH_FLOOR = 8
MAX_LENGTH_FLOOR = 64
# Shorter identifiers would refuse too much by containment ("bob" in "bobsleigh...").
MIN_EMAIL_LOCAL_PART_LENGTH = 4
MIN_USERNAME_LENGTH = 3
# Context words named in a refusal; shorter ones still count in the estimate.
MIN_NAMED_WORD_LENGTH = 4

COMMON_PASSWORDS_FILE = "common-passwords.txt.gz"


class WeakPassword(InvalidInput):
    """The password breaks the policy; `reasons` lists each rule it breaks, `field` names the
    request field that held the password."""

    default_detail = "The password is not acceptable."

    def __init__(self, reasons: list[str], *, field: str = "password") -> None:
        super().__init__(" ".join(reasons) or None)
        self.reasons = list(reasons)
        self.field = field


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped common-password list (see `data/README.md`), normalised and case-folded."""
    packed = (resources.files("app.security") / "data" / COMMON_PASSWORDS_FILE).read_bytes()
    lines = gzip.decompress(packed).decode("utf-8").splitlines()
    return frozenset(_fold(line) for line in lines if line.strip())


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Length bounds in Unicode code points, the list and identifier rules, and the least
    estimated guess count (0: no estimate) with the words every attacker of this service tries."""

    min_length: int = 15
    max_length: int = 1024
    min_guesses: float = 1e10
    context_words: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.min_length < MIN_LENGTH_FLOOR:
            raise ValueError(f"min_length must be at least {MIN_LENGTH_FLOOR}")
        if self.max_length < max(MAX_LENGTH_FLOOR, self.min_length):
            raise ValueError(f"max_length must be at least {MAX_LENGTH_FLOOR} and min_length")

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            min_length=settings.password_min_length,
            max_length=settings.password_max_length,
            min_guesses=settings.password_min_guesses,
            context_words=tuple(
                words_from(settings.service_name, *settings.password_context_words)
            ),
        )

    def problems(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> list[str]:
        """Every reason to refuse `password`, as sentences for the user; empty if acceptable."""
        # Counted as received and before any other work: cheap, and the same count the
        # sign-in path caps, so a password accepted here is never refused at sign-in.
        if len(password) > self.max_length:
            return [f"Use at most {self.max_length} characters."]

        normalized = unicodedata.normalize("NFKC", password)
        folded = normalized.casefold()
        reasons = self._form_problems(password, normalized)
        guessable = _known_guessable(folded)
        identifiers = _identifier_problems(folded, email=email, username=username)
        reasons += guessable + identifiers
        # A repeated character or a listed password is guessable already: the estimate
        # would only say so again. Text without a UTF-8 form cannot be estimated.
        if not guessable and self.min_guesses > 0 and is_encodable(password):
            account_words = words_from(email, username)
            reasons += self._guessability(
                normalized, account_words, identifiers_named=bool(identifiers)
            )
        return reasons

    def check(
        self,
        password: str,
        *,
        email: str | None = None,
        username: str | None = None,
        field: str = "password",
    ) -> None:
        """Raise `WeakPassword` with every reason if `password` (sent in the request's
        `field`) may not be set."""
        reasons = self.problems(password, email=email, username=username)
        if reasons:
            raise WeakPassword(reasons, field=field)

    def _form_problems(self, password: str, normalized: str) -> list[str]:
        reasons = []
        if not is_encodable(password):
            reasons.append("The password contains characters that cannot be stored.")
        # Counted after NFKC, which joins combining sequences ("e" + accent is one character),
        # but never longer than typed: NFKC also expands ligatures (U+FDFA becomes 18
        # characters), which must not make one keystroke pass a 15-character minimum.
        if min(len(password), len(normalized)) < self.min_length:
            reasons.append(f"Use at least {self.min_length} characters.")
        return reasons

    def _guessability(
        self, normalized: str, account_words: list[str], *, identifiers_named: bool
    ) -> list[str]:
        """Why `normalized` is too easy to guess, or nothing if it is not."""
        estimate = estimate_guesses(normalized, (*self.context_words, *account_words))
        if estimate.guesses >= self.min_guesses:
            return []
        reasons = [" ".join(filter(None, (GENERIC_WARNING, estimate.warning, SUGGESTION)))]
        folded = normalized.casefold()
        # The longest word found, so "acme corp" rather than a piece of it is named.
        used = sorted((word for word in self.context_words if _names(folded, word)), key=len)
        if used:
            reasons.append(f'Do not build the password from "{used[-1]}": attackers try it first.')
        if not identifiers_named and any(_names(folded, word) for word in account_words):
            reasons.append("Do not build the password from your email address or username.")
        return reasons


def _known_guessable(folded: str) -> list[str]:
    reasons = []
    if len(set(folded)) == 1:
        reasons.append("Do not repeat a single character.")
    if folded in common_passwords():
        reasons.append("This password is too common; choose another.")
    return reasons


def _identifier_problems(folded: str, *, email: str | None, username: str | None) -> list[str]:
    reasons = []
    if email and _uses_email(folded, _fold(email)):
        reasons.append("Do not use your email address in the password.")
    if username and _uses_username(folded, _fold(username)):
        reasons.append("Do not use your username in the password.")
    return reasons


def _names(folded_password: str, word: str) -> bool:
    # Shorter words ("com" of an address) turn up inside unrelated ones ("welcome").
    return len(word) >= MIN_NAMED_WORD_LENGTH and word in folded_password


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text.strip()).casefold()


def _uses_email(folded_password: str, folded_email: str) -> bool:
    local_part = folded_email.rpartition("@")[0]
    if len(local_part) >= MIN_EMAIL_LOCAL_PART_LENGTH and local_part in folded_password:
        return True
    return folded_email in folded_password


def _uses_username(folded_password: str, folded_username: str) -> bool:
    return len(folded_username) >= MIN_USERNAME_LENGTH and folded_username in folded_password
