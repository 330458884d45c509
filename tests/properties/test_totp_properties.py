"""TOTP codes (RFC 6238: SHA-1, 6 digits, 30-second steps) as the service checks them: for any
secret and any time, a code is accepted exactly when a step within one of the current one,
and after the last step accepted, has that code. Codes are compared against an independent
RFC 4226 computation here, not against pyotp, which the service itself uses.

Six-digit codes of two steps can be equal (one chance in a million per pair), so the
properties never say "the code of step s is refused"; they say "refused unless an allowed step
has the same code".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
import sys
import unicodedata
from datetime import UTC, datetime
from typing import Final

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.security.second_factors import matching_totp_step, totp_code, totp_step
from tests.properties.strategies import PROPERTY_SETTINGS, unicode_text

STEP: Final = 30
WINDOW: Final = 1  # steps either side of the current one

_EVERY_CHARACTER: Final = [chr(point) for point in range(sys.maxunicode + 1)]
# Every character `str.split()` splits on, i.e. every one `str.isspace()` holds for.
WHITESPACE: Final = [character for character in _EVERY_CHARACTER if character.isspace()]
# Decimal digits of other scripts, by value: `int()` reads them, `str.isdigit()` holds.
FOREIGN_DIGITS: Final[dict[int, list[str]]] = {value: [] for value in range(10)}
for _character in _EVERY_CHARACTER:
    _value = unicodedata.decimal(_character, None)
    if _value is not None and not _character.isascii():
        FOREIGN_DIGITS[_value].append(_character)

# Shared secrets of any length pyotp takes (112 bits and up), base32 as apps show them,
# with or without padding.
secrets = st.builds(
    lambda key, padded: base64.b32encode(key).decode().rstrip("" if padded else "="),
    st.binary(min_size=14, max_size=64),
    st.booleans(),
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(UTC),
)
# Steps relative to the current one: mostly near it, sometimes far.
offsets = st.one_of(st.integers(-3, 3), st.integers(-100, 100))


def reference_code(secret: str, step: int) -> str:
    """RFC 4226 HOTP of counter `step` (RFC 6238 TOTP), SHA-1, 6 digits."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{binary % 10**6:06d}"


def current_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP


def allowed_steps(secret: str, code: str, now: datetime, after_step: int | None) -> set[int]:
    """The steps whose code is `code` that the service may accept at `now`."""
    current = current_step(now)
    return {
        step
        for step in range(current - WINDOW, current + WINDOW + 1)
        if (after_step is None or step > after_step) and reference_code(secret, step) == code
    }


# The RFC 6238 test secret (appendix B, SHA-1), base32.
RFC_6238_SECRET: Final = base64.b32encode(b"12345678901234567890").decode()
# RFC 6238 appendix B, SHA-1: the time, and the last six digits of the 8-digit code.
RFC_6238_VECTORS = [
    (59, "287082"),
    (1111111109, "081804"),
    (1111111111, "050471"),
    (1234567890, "005924"),
    (2000000000, "279037"),
    (20000000000, "353130"),
]


@pytest.mark.parametrize(("unix_time", "code"), RFC_6238_VECTORS)
def test_codes_match_the_rfc_6238_test_vectors(unix_time: int, code: str) -> None:
    now = datetime.fromtimestamp(unix_time, UTC)

    assert totp_code(RFC_6238_SECRET, totp_step(now)) == code
    assert matching_totp_step(RFC_6238_SECRET, code, now) == unix_time // STEP


# Steps with the same code under the RFC 6238 secret, found by scanning (one pair in a
# million): next to each other, and two apart.
COLLISIONS = [(56188870, 56188871), (56295193, 56295195)]


@pytest.mark.parametrize(("earlier", "later"), COLLISIONS)
def test_a_code_two_steps_share_stays_good_for_the_later_step_once_the_earlier_was_used(
    earlier: int, later: int
) -> None:
    code = reference_code(RFC_6238_SECRET, earlier)
    assert reference_code(RFC_6238_SECRET, later) == code
    now = datetime.fromtimestamp((earlier + later) // 2 * STEP, UTC)  # both in the window

    assert matching_totp_step(RFC_6238_SECRET, code, now) in {earlier, later}
    assert matching_totp_step(RFC_6238_SECRET, code, now, after_step=earlier) == later
    assert matching_totp_step(RFC_6238_SECRET, code, now, after_step=later) is None


@PROPERTY_SETTINGS
@given(secret=secrets, now=moments)
def test_the_step_and_code_are_rfc_6238s(secret: str, now: datetime) -> None:
    step = totp_step(now)

    assert step == current_step(now)
    assert totp_code(secret, step) == reference_code(secret, step)


@PROPERTY_SETTINGS
@given(
    secret=secrets,
    now=moments,
    code_offset=offsets,
    last_offset=st.none() | st.integers(-3, 2),
    random_code=st.none() | st.text(string.digits, min_size=6, max_size=6),
)
def test_a_code_is_accepted_exactly_when_an_allowed_step_has_it(
    secret: str,
    now: datetime,
    code_offset: int,
    last_offset: int | None,
    random_code: str | None,
) -> None:
    current = current_step(now)
    code = random_code or reference_code(secret, current + code_offset)
    after_step = None if last_offset is None else current + last_offset

    found = matching_totp_step(secret, code, now, after_step=after_step)

    allowed = allowed_steps(secret, code, now, after_step)
    if allowed:
        assert found in allowed
    else:
        assert found is None


@PROPERTY_SETTINGS
@given(
    secret=secrets,
    now=moments,
    offset=st.integers(-WINDOW, WINDOW),
    position=st.integers(0, 5),
    digit=st.sampled_from(string.digits),
)
def test_a_code_one_digit_off_is_refused_unless_an_allowed_step_has_it(
    secret: str, now: datetime, offset: int, position: int, digit: str
) -> None:
    code = reference_code(secret, current_step(now) + offset)
    assume(digit != code[position])
    miss = code[:position] + digit + code[position + 1 :]

    found = matching_totp_step(secret, miss, now)

    allowed = allowed_steps(secret, miss, now, None)
    if allowed:
        assert found in allowed
    else:
        assert found is None


@PROPERTY_SETTINGS
@given(secret=secrets, now=moments, offset=st.integers(-WINDOW, WINDOW))
def test_a_code_is_accepted_once(secret: str, now: datetime, offset: int) -> None:
    """Once a step was accepted (`after_step`), its code and those of earlier steps are not,
    unless a later allowed step happens to have the same code."""
    current = current_step(now)
    code = reference_code(secret, current + offset)
    first = matching_totp_step(secret, code, now)
    assert first is not None

    again = matching_totp_step(secret, code, now, after_step=first)

    assert again is None or (again > first and reference_code(secret, again) == code)
    assert (again is None) == (not allowed_steps(secret, code, now, first))


@PROPERTY_SETTINGS
@given(secret=secrets, now=moments, offset=st.integers(-WINDOW, WINDOW), data=st.data())
def test_whitespace_anywhere_in_a_code_is_ignored(
    secret: str, now: datetime, offset: int, data: st.DataObject
) -> None:
    code = reference_code(secret, current_step(now) + offset)
    gaps = data.draw(
        st.lists(st.text(st.sampled_from(WHITESPACE), max_size=3), min_size=7, max_size=7),
        label="gaps",
    )
    spaced = "".join(gap + digit for gap, digit in zip(gaps, [*code, ""], strict=True))

    assert matching_totp_step(secret, spaced, now) == matching_totp_step(secret, code, now)
    assert matching_totp_step(secret, spaced, now) is not None


def six_ascii_digits(text: str) -> bool:
    typed = "".join(text.split())
    return len(typed) == 6 and all(character in string.digits for character in typed)


@PROPERTY_SETTINGS
@given(
    secret=secrets,
    now=moments,
    text=st.one_of(
        unicode_text,
        st.text(st.sampled_from(string.digits), max_size=12),
        st.text(st.characters(categories=["Nd", "No", "Zs"]), max_size=8),
    ),
)
def test_anything_but_six_ascii_digits_is_refused(secret: str, now: datetime, text: str) -> None:
    if not six_ascii_digits(text):
        assert matching_totp_step(secret, text, now) is None


@PROPERTY_SETTINGS
@given(secret=secrets, now=moments, offset=st.integers(-WINDOW, WINDOW), data=st.data())
def test_the_right_code_in_other_digits_or_lengths_is_refused(
    secret: str, now: datetime, offset: int, data: st.DataObject
) -> None:
    code = reference_code(secret, current_step(now) + offset)
    foreign = data.draw(st.sets(st.integers(0, 5), min_size=1), label="foreign positions")
    spelled = "".join(
        data.draw(st.sampled_from(FOREIGN_DIGITS[int(digit)])) if position in foreign else digit
        for position, digit in enumerate(code)
    )
    assert int(spelled) == int(code)  # the same number to Python: only the check tells

    extra = data.draw(st.sampled_from(string.digits), label="extra digit")
    for wrong in (spelled, code[:5], code + extra, extra + code, f"{code}.", f"+{code[1:]}"):
        assert matching_totp_step(secret, wrong, now) is None, wrong
