"""PasswordPolicy: NIST SP 800-63B-4 length bounds, the common list, and account identifiers."""

from __future__ import annotations

import unicodedata

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.errors import InvalidInput
from app.security.password_policy import PasswordPolicy, WeakPassword, common_passwords
from app.security.password_strength import SUGGESTION

ACCEPTABLE = "quince kayak ox"  # 15 characters, on no list, hard enough to guess
TOO_COMMON = "This password is too common; choose another."
EASY_TO_GUESS = "This password is too easy to guess."


def full_width(text: str) -> str:
    """ASCII letters as their full-width forms (U+FF01..), which NFKC maps back."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


@pytest.fixture
def default_policy(monkeypatch: pytest.MonkeyPatch) -> PasswordPolicy:
    monkeypatch.delenv("AUTH_PASSWORD_MIN_LENGTH", raising=False)
    monkeypatch.delenv("AUTH_PASSWORD_MAX_LENGTH", raising=False)
    return PasswordPolicy.from_settings(Settings(_env_file=None))


# --- length ------------------------------------------------------------------------------


def test_default_minimum_refuses_14_characters_and_accepts_15(
    default_policy: PasswordPolicy,
) -> None:
    assert len(ACCEPTABLE) == 15

    assert default_policy.problems(ACCEPTABLE) == []
    assert default_policy.problems(ACCEPTABLE[:14]) == ["Use at least 15 characters."]


def test_minimum_may_be_lowered_to_eight_but_no_further() -> None:
    # The length rule alone: no 8 characters reach the default guess estimate.
    policy = PasswordPolicy.from_settings(
        Settings(_env_file=None, password_min_length=8, password_min_guesses=0)
    )

    assert policy.problems("tangerin") == []
    assert policy.problems("tangeri") == ["Use at least 8 characters."]
    with pytest.raises(ValueError, match="at least 8"):
        PasswordPolicy(min_length=7)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, password_min_length=7)


def test_at_least_64_characters_must_be_allowed() -> None:
    with pytest.raises(ValueError, match="at least 64"):
        PasswordPolicy(max_length=63)


def test_password_over_the_cap_is_refused_for_that_reason_alone() -> None:
    policy = PasswordPolicy(min_length=15, max_length=64)
    at_cap = ("correct horse battery staple " * 3)[:64]

    assert policy.problems(at_cap) == []
    assert policy.problems(at_cap + "x") == ["Use at most 64 characters."]
    # Over the cap nothing else is looked at: a repeated character gets no second reason.
    assert policy.problems("x" * 65) == ["Use at most 64 characters."]


def test_default_cap_is_1024_characters(default_policy: PasswordPolicy) -> None:
    long_password = ("correct horse battery staple " * 40)[:1024]

    assert default_policy.problems(long_password) == []
    assert default_policy.problems(long_password + "x") == ["Use at most 1024 characters."]


def test_length_counts_code_points_so_15_emoji_are_enough(
    default_policy: PasswordPolicy,
) -> None:
    animals = "🐶🐱🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵"
    assert len(animals) == 15
    assert len(animals.encode()) == 60

    assert default_policy.problems(animals) == []
    assert default_policy.problems(animals[:14]) == ["Use at least 15 characters."]


def test_length_counts_an_accented_letter_once_however_it_was_typed(
    default_policy: PasswordPolicy,
) -> None:
    accented = "àèìòùáéíóúâêîôû"
    decomposed = unicodedata.normalize("NFD", accented)
    assert len(decomposed) == 30

    assert default_policy.problems(decomposed) == []
    assert default_policy.problems(unicodedata.normalize("NFD", accented[:14])) == [
        "Use at least 15 characters."
    ]


def test_a_ligature_that_normalises_to_many_letters_counts_as_one(
    default_policy: PasswordPolicy,
) -> None:
    ligature = "\ufdfa"  # one code point; NFKC spells it out in 18
    assert len(unicodedata.normalize("NFKC", ligature)) == 18

    assert default_policy.problems(ligature) == ["Use at least 15 characters."]


# --- content -----------------------------------------------------------------------------


def test_shipped_common_list_has_over_ten_thousand_entries() -> None:
    passwords = common_passwords()

    assert len(passwords) >= 10_000
    assert {"password", "qwertyuiop", "iloveyou", "manchesterunited"} <= passwords


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "PASSWORD",
        "qwertyuiop",
        "QwertyUIOP",
        "iloveyou",
        "1q2w3e4r5t6y7u8i",
        "ManchesterUnited",
        full_width("password"),  # the same after NFKC
    ],
)
def test_passwords_on_the_common_list_are_refused_in_any_case(password: str) -> None:
    policy = PasswordPolicy(min_length=8)

    assert policy.problems(password) == [TOO_COMMON]


def test_a_common_password_long_enough_for_the_default_is_still_refused(
    default_policy: PasswordPolicy,
) -> None:
    assert default_policy.problems("manchesterunited") == [TOO_COMMON]


def test_only_exact_matches_count_as_common(default_policy: PasswordPolicy) -> None:
    # Documented rule: the list is matched whole, not as a substring or stem.
    assert default_policy.problems("manchesterunited and chips") == []


@pytest.mark.parametrize("password", ["a" * 20, "aAaAaAaAaAaAaAaAaAaA", "7" * 15, " " * 15])
def test_a_single_repeated_character_is_refused(
    default_policy: PasswordPolicy, password: str
) -> None:
    assert "Do not repeat a single character." in default_policy.problems(password)


@pytest.mark.parametrize(
    "password",
    ["John.Smith and the tea kettle", "my address: JOHN.SMITH@EXAMPLE.COM", "john.smith"],
)
def test_password_containing_the_email_local_part_or_address_is_refused(
    password: str,
) -> None:
    policy = PasswordPolicy(min_length=8)

    assert "Do not use your email address in the password." in policy.problems(
        password, email="john.smith@example.com"
    )


def test_short_email_local_part_is_only_refused_as_the_whole_address(
    default_policy: PasswordPolicy,
) -> None:
    email = "bob@example.com"

    assert default_policy.problems("bob builds bridges", email=email) == []
    assert default_policy.problems("mail me at Bob@Example.com", email=email) == [
        "Do not use your email address in the password."
    ]


def test_password_containing_the_username_is_refused(default_policy: PasswordPolicy) -> None:
    assert default_policy.problems("Ada Lovelace computes", username="ada") == [
        "Do not use your username in the password."
    ]
    assert default_policy.problems("al green sings softly", username="al") == []


def test_password_without_utf8_form_is_refused(default_policy: PasswordPolicy) -> None:
    assert default_policy.problems("lone \ud800 surrogate here") == [
        "The password contains characters that cannot be stored."
    ]


def test_every_broken_rule_is_reported(default_policy: PasswordPolicy) -> None:
    assert default_policy.problems("adaada", email="adaada@example.com", username="ada") == [
        "Use at least 15 characters.",
        "Do not use your email address in the password.",
        "Do not use your username in the password.",
        f"{EASY_TO_GUESS} {SUGGESTION}",
    ]


# --- check -------------------------------------------------------------------------------


def test_check_raises_weak_password_an_invalid_input_carrying_the_reasons(
    default_policy: PasswordPolicy,
) -> None:
    with pytest.raises(WeakPassword) as raised:
        default_policy.check("password")

    assert isinstance(raised.value, InvalidInput)
    assert raised.value.reasons == ["Use at least 15 characters.", TOO_COMMON]
    assert "Use at least 15 characters." in raised.value.detail


def test_check_accepts_an_acceptable_password(default_policy: PasswordPolicy) -> None:
    default_policy.check(ACCEPTABLE, email="someone@example.com", username="someone")
