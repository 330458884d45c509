"""Opaque tokens (refresh and mailed tokens) and client secrets: random, URL-safe, 256 bits,
and stored as digests that match only the secret they were made from."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.security.client_secrets import (
    client_secret_digest,
    new_client_id,
    new_client_secret,
    secret_matches,
)
from app.security.opaque_tokens import new_opaque_token, token_digest
from tests.properties.strategies import PROPERTY_SETTINGS, unicode_text
from tests.properties.tokens import mutated

BATCH = 2000
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")

generators = pytest.mark.parametrize(
    ("generate", "random_bytes"),
    [(new_opaque_token, 32), (new_client_secret, 32), (new_client_id, 16)],
    ids=["opaque token", "client secret", "client id"],
)


def raw_bits(token: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), "big")


@generators
def test_generated_values_are_url_safe_unique_and_fully_random(
    generate: Callable[[], str], random_bytes: int
) -> None:
    batch = [generate() for _ in range(BATCH)]

    assert len(set(batch)) == BATCH
    for value in batch:
        # Unpadded base64url of exactly `random_bytes` bytes: no '=', '+', '/', nor ':'
        # (client ids go into HTTP Basic credentials).
        assert URL_SAFE.fullmatch(value)
        assert len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) == random_bytes
    # Every one of the 8 * random_bytes bits is 0 in some value and 1 in another: none is
    # stuck, so the length is all entropy (a stuck bit survives 2000 draws with p = 2**-1999).
    ones, zeros = 0, 0
    for value in batch:
        bits = raw_bits(value)
        ones |= bits
        zeros |= ~bits
    full = (1 << (8 * random_bytes)) - 1
    assert ones & full == full
    assert zeros & full == full


@PROPERTY_SETTINGS
@given(first=unicode_text, second=unicode_text)
def test_digests_are_equal_exactly_for_equal_secrets(first: str, second: str) -> None:
    assert HEX_SHA256.fullmatch(token_digest(first))
    assert (token_digest(first) == token_digest(second)) == (first == second)
    assert client_secret_digest(first) == token_digest(first)


@PROPERTY_SETTINGS
@given(data=st.data(), generate=st.sampled_from([new_opaque_token, new_client_secret]))
def test_a_stored_digest_matches_its_secret_and_no_changed_one(
    data: st.DataObject, generate: Callable[[], str]
) -> None:
    secret = generate()
    stored = client_secret_digest(secret)
    other = data.draw(st.one_of(mutated(secret), st.just(generate()), unicode_text), label="other")

    assert secret_matches(stored, secret)
    assert secret_matches(stored, other) == (other == secret)
    # Refresh and mailed tokens are looked up by digest: a changed token finds nothing.
    assert (token_digest(other) == stored) == (other == secret)


@PROPERTY_SETTINGS
@given(stored=st.text(st.characters(max_codepoint=0x7F)), presented=unicode_text)
def test_matching_against_any_stored_string_never_raises(stored: str, presented: str) -> None:
    """A truncated, corrupt or foreign (say, bcrypt) value in the column is a non-match,
    not a server error. ASCII only: `hmac.compare_digest` refuses non-ASCII str, and the
    column only ever receives hex digests."""
    assert secret_matches(stored, presented) == (stored == token_digest(presented))
