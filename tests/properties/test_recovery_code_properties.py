"""Recovery codes: ten a set, each unique, 16 characters of a 32-letter alphabet (80 bits),
shown as `xxxx-xxxx-xxxx-xxxx`; typed in any case, with or without hyphens or spaces, a code
has its digest and nothing else has; and the service spends each code once, on PostgreSQL and
on SQLite, also when it is presented many times at once."""

from __future__ import annotations

import asyncio
import hashlib
import re
import string
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Final

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.runtime import runtime_of
from app.security.second_factors import (
    new_recovery_codes,
    normalize_recovery_code,
    recovery_code_digest,
)
from app.services.accounts.second_factors import SecondFactors
from app.services.common.unit_of_work import unit_of_work
from tests.properties.strategies import PROPERTY_SETTINGS, unicode_text
from tests.support.flows import register

ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, in lower case
SHOWN: Final = re.compile(r"[a-z2-7]{4}(?:-[a-z2-7]{4}){3}")
HEX_SHA256: Final = re.compile(r"[0-9a-f]{64}")
SETS: Final = 500
SEPARATORS: Final = [" ", "-", "\t", "\n", "\u00a0"]

# Codes as the service shows them (drawn here, so that examples are reproducible).
codes = st.lists(st.sampled_from(ALPHABET), min_size=16, max_size=16).map(
    lambda letters: "-".join("".join(letters[start : start + 4]) for start in range(0, 16, 4))
)


def test_a_set_is_ten_unique_codes_of_eighty_random_bits_shown_in_groups() -> None:
    sets = [new_recovery_codes() for _ in range(SETS)]

    every = [code for one_set in sets for code in one_set]
    assert all(len(one_set) == 10 for one_set in sets)
    assert len(set(every)) == len(every)
    assert all(SHOWN.fullmatch(code) for code in every)
    # Every one of the 16 positions takes every one of the 32 letters somewhere in 5000
    # codes: no position is stuck or narrowed, so a code is 16 x 5 = 80 bits. (A letter
    # missing from one position by chance: 32 x 16 x (31/32)^5000, about 2^-220.)
    letters = [code.replace("-", "") for code in every]
    for position in range(16):
        assert {code[position] for code in letters} == set(ALPHABET), position


@st.composite
def typed_as(draw: st.DrawFn, code: str) -> str:
    """`code` as a person might type it: any letter in either case, and any run of spaces,
    tabs and hyphens (or none) between any two characters, before or after."""
    letters = [
        character.upper() if draw(st.booleans()) else character
        for character in code.replace("-", "")
    ]
    gaps = draw(
        st.lists(
            st.text(st.sampled_from(SEPARATORS), max_size=3),
            min_size=len(letters) + 1,
            max_size=len(letters) + 1,
        )
    )
    return "".join(gap + letter for gap, letter in zip(gaps, [*letters, ""], strict=True))


@PROPERTY_SETTINGS
@given(code=codes, data=st.data())
def test_a_code_typed_in_any_case_with_any_separators_has_its_digest(
    code: str, data: st.DataObject
) -> None:
    typed = data.draw(typed_as(code), label="typed")

    assert HEX_SHA256.fullmatch(recovery_code_digest(code))
    assert recovery_code_digest(typed) == recovery_code_digest(code)
    assert recovery_code_digest(code) == hashlib.sha256(code.replace("-", "").encode()).hexdigest()


@st.composite
def near_misses(draw: st.DrawFn, code: str) -> str:
    """`code` with one of its 16 characters changed to another (not merely its other case),
    dropped, or with a character added: what a typo or a guess one off looks like."""
    letters = list(code.replace("-", ""))
    position = draw(st.integers(0, len(letters) - 1))
    other_character = st.one_of(
        st.sampled_from(ALPHABET + string.ascii_uppercase + string.digits),
        st.characters(exclude_categories=["Cs"]),
    ).filter(lambda character: character not in SEPARATORS)
    change = draw(st.sampled_from(["replace", "drop", "add"]))
    if change == "replace":
        letters[position] = draw(
            other_character.filter(lambda c: c.lower() != letters[position].lower())
        )
    elif change == "drop":
        del letters[position]
    else:
        letters.insert(position, draw(other_character))
    return "-".join("".join(letters[start : start + 4]) for start in range(0, len(letters), 4))


@PROPERTY_SETTINGS
@given(code=codes, data=st.data())
def test_a_code_off_by_one_character_has_another_digest(code: str, data: st.DataObject) -> None:
    miss = data.draw(near_misses(code), label="near miss")
    typed = data.draw(typed_as(miss), label="typed") if miss.isascii() else miss

    assert recovery_code_digest(typed) != recovery_code_digest(code)


@PROPERTY_SETTINGS
@given(code=codes, other=st.one_of(unicode_text, codes))
def test_digests_are_equal_exactly_for_the_same_normal_form(code: str, other: str) -> None:
    same = normalize_recovery_code(other) == normalize_recovery_code(code)

    assert (recovery_code_digest(other) == recovery_code_digest(code)) == same


# --- spent once, by the service, over a real database ---------------------------------------

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

# The database fixtures live for the whole test, not per example: each example makes a fresh
# set of codes for Ada first (which voids what an earlier example left), so no example sees
# another's state. Few examples: each one commits a transaction per attempt.
WITH_DATABASE = settings(
    PROPERTY_SETTINGS,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> uuid.UUID:
    """Ada's id: an account registered through the API."""
    return uuid.UUID((await register(client))["id"])


@pytest.fixture
async def grace(client: httpx.AsyncClient) -> uuid.UUID:
    """Another account's id."""
    return uuid.UUID((await register(client, "grace@example.com"))["id"])


@asynccontextmanager
async def second_factors(app: FastAPI) -> AsyncIterator[SecondFactors]:
    """`SecondFactors` in a unit of work of its own, as a use case runs it."""
    runtime = runtime_of(app)
    async with runtime.session_factory() as session, unit_of_work(session):
        yield SecondFactors(session, runtime.load_data_encryptor)


async def new_set(app: FastAPI, user: uuid.UUID) -> list[str]:
    async with second_factors(app) as factors:
        return await factors.new_recovery_codes(user, NOW)


async def spend(app: FastAPI, user: uuid.UUID, typed: str) -> bool:
    async with second_factors(app) as factors:
        return await factors.spend_recovery_code(user, typed, NOW)


async def unused(app: FastAPI, user: uuid.UUID) -> int:
    async with second_factors(app) as factors:
        return await factors.unused_recovery_codes(user)


# One attempt: whose code (Ada's current set's, her voided set's, one never issued, or one of
# Grace's), which of the ten, and how it is spelled.
attempts = st.tuples(
    st.sampled_from(["current", "voided", "never issued", "grace's"]),
    st.integers(0, 9),
    st.sampled_from(["as shown", "upper case", "no hyphens", "spaces"]),
)


def spelled(code: str, spelling: str) -> str:
    return {
        "as shown": code,
        "upper case": code.upper(),
        "no hyphens": code.replace("-", ""),
        "spaces": code.replace("-", " "),
    }[spelling]


@WITH_DATABASE
@given(
    tries=st.lists(attempts, max_size=15), never_issued=st.lists(codes, min_size=10, max_size=10)
)
async def test_each_code_of_the_current_set_is_spent_once_and_no_other_code_ever(
    app: FastAPI,
    ada: uuid.UUID,
    grace: uuid.UUID,
    tries: list[tuple[str, int, str]],
    never_issued: list[str],
) -> None:
    voided = await new_set(app, ada)
    current = await new_set(app, ada)  # voids the first set
    graces = await new_set(app, grace)
    sets = {"current": current, "voided": voided, "never issued": never_issued, "grace's": graces}
    spent: set[int] = set()

    for source, index, spelling in tries:
        typed = spelled(sets[source][index], spelling)
        accepted = await spend(app, ada, typed)
        assert accepted == (source == "current" and index not in spent), (source, index)
        if accepted:
            spent.add(index)

    assert await unused(app, ada) == 10 - len(spent)
    assert await unused(app, grace) == 10


async def test_a_code_presented_many_times_at_once_is_spent_once(
    app: FastAPI, ada: uuid.UUID
) -> None:
    current = await new_set(app, ada)
    code = current[4]
    spellings = [code, code.upper(), code.replace("-", ""), code.replace("-", " ")]

    outcomes = await asyncio.gather(*(spend(app, ada, spellings[n % 4]) for n in range(12)))

    assert outcomes.count(True) == 1
    assert outcomes.count(False) == 11
    assert await unused(app, ada) == 9
