"""Shared hypothesis settings and strategies for the property tests."""

from __future__ import annotations

import json
import string
from typing import Any, Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Reproducible (the same examples every run, nothing read from or written to an example
# database), and no per-example deadline or slowness check: a shared CI core makes RSA
# signatures and argon2 hashes take whatever time they take.
PROPERTY_SETTINGS: Final = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

BASE64URL: Final = string.ascii_letters + string.digits + "-_"

# Text as an HTTP header or a parsed form field can carry it: any code point except lone
# surrogates (the app's request validation refuses those; see the surrogate tests).
unicode_text = st.text(st.characters(exclude_categories=["Cs"]))
# Characters a mutation may put into a token: its own alphabet (the likeliest to slip
# through), the separators and padding PyJWT handles specially, and anything else.
mutation_characters = st.one_of(
    st.sampled_from(BASE64URL),
    st.sampled_from(".=+/ \t\n\x00"),
    st.characters(exclude_categories=["Cs"]),
)

# Claim names the codec sets itself or PyJWT validates by type.
_CONTROLLED_CLAIMS: Final = frozenset({"iss", "aud", "iat", "exp", "nbf", "sub", "jti"})

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    unicode_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(unicode_text, children, max_size=4)
    ),
    max_leaves=12,
)
scope_tokens = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=20,
)


@st.composite
def access_claims(draw: st.DrawFn) -> dict[str, Any]:
    """Claims a caller may hand `AccessTokenCodec.encode`: the service's own plus extras."""
    claims: dict[str, Any] = {
        "sub": draw(unicode_text),
        "client_id": draw(unicode_text),
        "scope": " ".join(draw(st.lists(scope_tokens, max_size=6))),
        "roles": draw(st.lists(unicode_text, max_size=6)),
        "sid": str(draw(st.uuids())),
        "ver": draw(st.integers(min_value=0, max_value=2**53)),
        "name": draw(unicode_text),
    }
    if draw(st.booleans()):
        claims["jti"] = draw(unicode_text)
    extras = draw(
        st.dictionaries(
            unicode_text.filter(lambda name: name not in _CONTROLLED_CLAIMS | claims.keys()),
            json_values,
            max_size=4,
        )
    )
    return {**claims, **extras}


def json_round_trip(value: Any) -> Any:
    """What a JSON encoder and decoder make of `value` (tuples become lists, and so on)."""
    return json.loads(json.dumps(value))
