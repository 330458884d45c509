"""PasswordHasher: any password the policy lets through hashes and verifies, in any Unicode
normal form, no other password matches, no stored value makes verification raise, and
outdated hashes upgrade."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import bcrypt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.security.passwords import BCRYPT_MAX_PASSWORD_BYTES, Argon2Parameters, PasswordHasher
from tests.properties.strategies import PROPERTY_SETTINGS

# About a millisecond a hash; the real defaults are tested in tests/security.
CHEAP = Argon2Parameters(memory_cost_kib=1024, time_cost=1, parallelism=1)
OTHER = Argon2Parameters(memory_cost_kib=2048, time_cost=2, parallelism=1)
MAX_LENGTH = 1024  # AUTH_PASSWORD_MAX_LENGTH's default: nothing longer is ever hashed
FEW = settings(PROPERTY_SETTINGS, max_examples=40)

# Unicode at large, plus what tends to break hashing: NUL, emoji (4 UTF-8 bytes), combining
# marks, and code points NFKC changes (ligatures, full-width letters).
password_characters = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.sampled_from(["\x00", "🔑", "\u200d", "\u0301", "\u0308", "\ufb01", "\uff21", "\ufdfa"]),
)
passwords = st.one_of(
    st.text(password_characters, max_size=80),
    st.text(password_characters, min_size=MAX_LENGTH - 8, max_size=MAX_LENGTH),
)


@pytest.fixture(scope="module")
def hasher() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(CHEAP, workers=2)
    yield hasher
    hasher.close()


@pytest.fixture(scope="module")
def outdated_hasher() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(OTHER, workers=1)
    yield hasher
    hasher.close()


def nfkc(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def variants(password: str) -> list[str]:
    """Near misses a verifier must not confuse with `password`: other text even after NFKC
    (other Unicode spellings of the same text are the same password)."""
    near = [password + "\x00", password[:-1], password.upper(), " " + password]
    return [variant for variant in near if nfkc(variant) != nfkc(password)]


@FEW
@given(password=passwords)
async def test_a_hashed_password_verifies_and_nothing_near_it_does(
    hasher: PasswordHasher, password: str
) -> None:
    hashed = await hasher.hash(password)

    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify_and_update(password, hashed) == (True, None)
    for near_miss in variants(password):
        assert await hasher.verify_and_update(near_miss, hashed) == (False, None)


@FEW
@given(password=passwords)
async def test_every_unicode_normal_form_of_a_password_matches_it(
    hasher: PasswordHasher, password: str
) -> None:
    hashed = await hasher.hash(password)

    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        spelled = unicodedata.normalize(form, password)
        assert await hasher.verify_and_update(spelled, hashed) == (True, None)


@FEW
@given(password=passwords, other=passwords)
async def test_a_different_password_never_matches(
    hasher: PasswordHasher, password: str, other: str
) -> None:
    assume(nfkc(password) != nfkc(other))

    assert await hasher.verify_and_update(other, await hasher.hash(password)) == (False, None)


stored_garbage = st.one_of(
    st.none(),
    st.text(),
    st.tuples(
        st.sampled_from(["$argon2id$", "$argon2id$v=19$m=1024,t=1,p=1$", "$argon2i$", "$2b$"]),
        st.text(),
    ).map("".join),
    st.builds("$2b$04${}".format, st.text(max_size=60)),
)


@FEW
@given(stored=stored_garbage, password=st.text(max_size=100))
async def test_verification_never_raises_whatever_is_stored(
    hasher: PasswordHasher, stored: str | None, password: str
) -> None:
    """Corrupt, truncated or foreign hashes, and passwords with lone surrogates (a JSON
    body can carry them), are a non-match without an upgrade, not an error."""
    assert await hasher.verify_and_update(password, stored) == (False, None)


@FEW
@given(password=st.text())
async def test_hashing_refuses_only_passwords_without_a_utf8_form(
    hasher: PasswordHasher, password: str
) -> None:
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        # Documented as ValueError (the policy refuses these first); surrogates it is.
        with pytest.raises(ValueError, match="surrogates"):
            await hasher.hash(password)
    else:
        assert await hasher.verify_and_update(password, await hasher.hash(password)) == (
            True,
            None,
        )


@settings(FEW, max_examples=15)
@given(password=passwords, wrong=passwords)
async def test_hashes_with_other_parameters_upgrade_on_a_match_only(
    hasher: PasswordHasher, outdated_hasher: PasswordHasher, password: str, wrong: str
) -> None:
    assume(nfkc(password) != nfkc(wrong))
    outdated = await outdated_hasher.hash(password)

    assert await hasher.verify_and_update(wrong, outdated) == (False, None)
    matches, upgraded = await hasher.verify_and_update(password, outdated)
    assert matches
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify_and_update(password, upgraded) == (True, None)


legacy_passwords = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@settings(FEW, max_examples=15)
@given(password=legacy_passwords.filter(lambda p: len(p.encode()) <= BCRYPT_MAX_PASSWORD_BYTES))
async def test_legacy_bcrypt_hashes_verify_and_upgrade_to_argon2id(
    hasher: PasswordHasher, password: str
) -> None:
    # Hashed as typed, as everything was before passwords were normalised.
    stored = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()

    matches, upgraded = await hasher.verify_and_update(password, stored)

    assert matches
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$")
    assert await hasher.verify_and_update(password, upgraded) == (True, None)
    assert await hasher.verify_and_update(nfkc(password), upgraded) == (True, None)
    assert await hasher.verify_and_update(password + "x", stored) == (False, None)


@settings(FEW, max_examples=15)
@given(
    password=legacy_passwords.filter(lambda p: len(p.encode()) > BCRYPT_MAX_PASSWORD_BYTES)
    | st.text("ab", min_size=BCRYPT_MAX_PASSWORD_BYTES + 1)
)
async def test_bcrypt_never_matches_beyond_its_72_byte_prefix(
    hasher: PasswordHasher, password: str
) -> None:
    """bcrypt reads 72 bytes: a hash of the prefix would let the prefix alone sign in, so
    a password longer than that never matches a bcrypt hash, even of its own prefix."""
    prefix = password.encode()[:BCRYPT_MAX_PASSWORD_BYTES]
    stored = bcrypt.hashpw(prefix, bcrypt.gensalt(rounds=4)).decode()

    assert await hasher.verify_and_update(password, stored) == (False, None)
