"""PasswordPolicy: any text gets an answer (never an error but `WeakPassword`), and the
answer follows the documented rules: length in code points (NFKC-joined, never longer than
typed), one repeated character, the common list, the account's identifiers and the guess
estimate, all on the NFKC-normalised (and for comparisons case-folded) password."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.security.password_policy import (
    MAX_LENGTH_FLOOR,
    MIN_LENGTH_FLOOR,
    PasswordPolicy,
    WeakPassword,
    common_passwords,
)
from app.security.password_strength import estimate_guesses
from tests.properties.strategies import PROPERTY_SETTINGS

DEFAULT = PasswordPolicy()
COMMON = sorted(common_passwords())

policies = st.builds(
    lambda minimum, extra: PasswordPolicy(minimum, max(MAX_LENGTH_FLOOR, minimum) + extra),
    st.integers(MIN_LENGTH_FLOOR, 80),
    st.integers(0, 200),
)
# Any str a request can deliver, lone surrogates included, around the interesting lengths.
any_text = st.one_of(st.text(max_size=40), st.text(min_size=60, max_size=300))
identifiers = st.none() | st.text(max_size=30) | st.emails().map(str)


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms, which NFKC maps back."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


@PROPERTY_SETTINGS
@given(policy=policies, password=any_text, email=identifiers, username=identifiers)
def test_any_text_gets_reasons_or_passes_and_check_raises_only_weak_password(
    policy: PasswordPolicy, password: str, email: str | None, username: str | None
) -> None:
    reasons = policy.problems(password, email=email, username=username)

    assert all(isinstance(reason, str) and reason for reason in reasons)
    if reasons:
        with pytest.raises(WeakPassword) as refused:
            policy.check(password, email=email, username=username)
        assert refused.value.reasons == reasons
    else:
        policy.check(password, email=email, username=username)


@PROPERTY_SETTINGS
@given(policy=policies, password=any_text)
def test_length_is_counted_in_code_points_after_nfkc_but_never_above_what_was_typed(
    policy: PasswordPolicy, password: str
) -> None:
    reasons = policy.problems(password)
    too_short = f"Use at least {policy.min_length} characters."

    if len(password) > policy.max_length:
        # Refused before any other work, for that reason alone.
        assert reasons == [f"Use at most {policy.max_length} characters."]
        return
    assert (too_short in reasons) == (
        min(len(password), len(unicodedata.normalize("NFKC", password))) < policy.min_length
    )


@PROPERTY_SETTINGS
@given(
    password=st.one_of(
        st.text(min_size=DEFAULT.min_length - 2, max_size=40),
        st.sampled_from(COMMON),
        st.text(min_size=DEFAULT.min_length, max_size=DEFAULT.max_length + 2),
    )
)
def test_without_identifiers_a_password_passes_exactly_when_it_meets_the_rules(
    password: str,
) -> None:
    try:
        password.encode("utf-8")
        storable = True
    except UnicodeEncodeError:
        storable = False
    normalized = unicodedata.normalize("NFKC", password)
    meets_rules = (
        storable
        and DEFAULT.min_length <= min(len(password), len(normalized))
        and len(password) <= DEFAULT.max_length
        and len(set(normalized.casefold())) > 1
        and normalized.casefold() not in common_passwords()
        and estimate_guesses(normalized).guesses >= DEFAULT.min_guesses
    )

    assert (DEFAULT.problems(password) == []) == meets_rules


@PROPERTY_SETTINGS
@given(
    character=st.characters(exclude_categories=["Cs"]),
    count=st.integers(DEFAULT.min_length, 100),
)
def test_one_repeated_character_is_refused_however_long(character: str, count: int) -> None:
    assume(len(set(fold(character * count))) == 1)

    assert "Do not repeat a single character." in DEFAULT.problems(character * count)


@PROPERTY_SETTINGS
@given(
    common=st.sampled_from(COMMON),
    spelling=st.sampled_from([str.upper, str.title, full_width, lambda p: p]),
    policy=st.builds(PasswordPolicy, st.just(MIN_LENGTH_FLOOR)),
)
def test_common_passwords_are_refused_in_any_case_or_width(
    common: str, spelling: Callable[[str], str], policy: PasswordPolicy
) -> None:
    password = spelling(common)

    assert "This password is too common; choose another." in policy.problems(password)


@PROPERTY_SETTINGS
@given(
    local_part=st.from_regex(r"[a-z0-9]{4,12}", fullmatch=True),
    domain=st.sampled_from(["example.com", "mail.example.org"]),
    before=st.text(max_size=10),
    after=st.text(max_size=10),
    spelling=st.sampled_from([str.upper, full_width, lambda p: p]),
)
def test_a_password_containing_the_email_local_part_is_refused(
    local_part: str, domain: str, before: str, after: str, spelling: Callable[[str], str]
) -> None:
    password = before + spelling(local_part) + after

    reasons = DEFAULT.problems(password, email=f"{local_part}@{domain}")

    assert "Do not use your email address in the password." in reasons


@PROPERTY_SETTINGS
@given(
    username=st.from_regex(r"[a-z][a-z0-9_]{2,15}", fullmatch=True),
    before=st.text(max_size=10),
    after=st.text(max_size=10),
    spelling=st.sampled_from([str.upper, full_width, lambda p: p]),
)
def test_a_password_containing_the_username_is_refused(
    username: str, before: str, after: str, spelling: Callable[[str], str]
) -> None:
    password = before + spelling(username) + after

    assert "Do not use your username in the password." in DEFAULT.problems(
        password, username=username
    )
