"""The guess estimate: zxcvbn with context words, bounded in cost, and the default threshold."""

from __future__ import annotations

import time

import pytest

from app.config import Settings
from app.security.password_policy import PasswordPolicy
from app.security.password_strength import (
    ESTIMATED_LENGTH,
    GENERIC_WARNING,
    SUGGESTION,
    estimate_guesses,
    words_from,
)

# Estimated at about 7e9 guesses: under the default 1e10, though on no list.
JUST_TOO_GUESSABLE = "tangerine kayak"
STRONG_ENOUGH = "quince kayak ox"


@pytest.fixture
def default_policy(monkeypatch: pytest.MonkeyPatch) -> PasswordPolicy:
    for name in ("MIN_LENGTH", "MAX_LENGTH", "MIN_GUESSES", "CONTEXT_WORDS"):
        monkeypatch.delenv(f"AUTH_PASSWORD_{name}", raising=False)
    monkeypatch.delenv("AUTH_SERVICE_NAME", raising=False)
    return PasswordPolicy.from_settings(Settings(_env_file=None))


def test_by_default_a_password_needs_an_estimated_1e10_guesses(
    default_policy: PasswordPolicy,
) -> None:
    assert default_policy.min_guesses == 1e10
    assert 1e9 < estimate_guesses(JUST_TOO_GUESSABLE).guesses < 1e10

    assert default_policy.problems(JUST_TOO_GUESSABLE) == [
        "This password is too easy to guess. Add another word or two; uncommon words are better."
    ]
    assert default_policy.problems(STRONG_ENOUGH) == []


def test_a_lower_setting_accepts_what_the_default_refuses() -> None:
    policy = PasswordPolicy.from_settings(Settings(_env_file=None, password_min_guesses=1e9))

    assert policy.problems(JUST_TOO_GUESSABLE) == []


def test_the_estimator_says_why_when_it_can(default_policy: PasswordPolicy) -> None:
    (reason,) = default_policy.problems("1234567890123456")

    # Which of equally likely explanations zxcvbn gives ("a sequence", "similar to a common
    # password") may vary from run to run; that it gives one does not.
    warning = reason.removeprefix(GENERIC_WARNING).removesuffix(SUGGESTION).strip()
    assert reason == f"{GENERIC_WARNING} {warning} {SUGGESTION}"
    assert warning.endswith(".")


def test_the_service_name_and_context_words_count_against_a_password() -> None:
    settings = Settings(
        _env_file=None, service_name="Nightjar", password_context_words=["Acme Corp"]
    )
    policy = PasswordPolicy.from_settings(settings)

    assert policy.context_words == ("nightjar", "acme corp", "acme", "corp")
    assert estimate_guesses("welcome to acme corp").guesses >= 1e10
    assert estimate_guesses("welcome to acme corp", policy.context_words).guesses < 1e10
    assert 'Do not build the password from "acme corp": attackers try it first.' in (
        policy.problems("welcome to acme corp")
    )


def test_email_addresses_and_usernames_give_their_pieces_as_context_words() -> None:
    assert words_from("Ada.Lovelace+auth@Example.com", "ada_l", None, "") == [
        "ada.lovelace+auth@example.com",
        "ada",
        "lovelace",
        "auth",
        "example",
        "com",
        "ada_l",
    ]


def test_context_words_without_utf8_form_are_ignored_not_an_error() -> None:
    assert estimate_guesses("quince kayak ox", ["lone \ud800 surrogate"]).guesses >= 1e10


def test_only_the_first_characters_are_estimated_so_long_input_costs_no_more() -> None:
    prefix = "4@8({[<3$1!|0+7%2" * 2  # l33t-like symbols: the costliest input found
    long_password = (prefix * 40)[:1024]

    started = time.process_time()
    estimate = estimate_guesses(long_password)
    elapsed = time.process_time() - started

    assert estimate == estimate_guesses(long_password[:ESTIMATED_LENGTH])
    # About 20 ms of CPU at most on a slow machine; the whole 1024 characters would take
    # seconds had the library not stopped at 100, and a quarter second up to there.
    assert elapsed < 0.15


def test_a_long_password_whose_first_characters_are_guessable_is_refused(
    default_policy: PasswordPolicy,
) -> None:
    password = "passwordpassword" * 2 + "Zq8#mV!r2Lx@9wTe"

    assert default_policy.problems(password) != []
    assert default_policy.problems(password[::-1]) == []
