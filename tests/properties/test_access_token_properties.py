"""AccessTokenCodec: every token it mints verifies with exactly its claims, and nothing else
does: no mutation, splice, forgery, expired or foreign token, nor arbitrary text."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.security.access_tokens import AccessTokenCodec, InvalidAccessToken
from app.security.keys.signing_key import Algorithm
from tests.properties.strategies import (
    PROPERTY_SETTINGS,
    access_claims,
    json_round_trip,
    unicode_text,
)
from tests.properties.tokens import (
    AUDIENCE,
    ISSUER,
    LEEWAY,
    TTL,
    Service,
    alg_confused,
    algorithms,
    b64json,
    made_up,
    minted,
    mutated,
    now_claims,
    sign,
    spliced,
)


def refusal(codec: AccessTokenCodec, token: str) -> str:
    """The reason `codec` refuses `token`; fails the test if it accepts it or raises anything
    but `InvalidAccessToken`."""
    with pytest.raises(InvalidAccessToken) as refused:
        codec.decode(token)
    return refused.value.reason


@PROPERTY_SETTINGS
@given(algorithm=algorithms, claims=access_claims(), audiences=st.lists(unicode_text, max_size=3))
def test_minted_tokens_verify_with_exactly_the_claims_given(
    service: Service, algorithm: Algorithm, claims: dict[str, Any], audiences: list[str]
) -> None:
    before = int(time.time())
    token = service.codecs[algorithm].encode(claims, audiences=audiences)

    decoded = service.codec.decode(token)

    assert jwt.get_unverified_header(token) == {
        "typ": "at+jwt",
        "alg": algorithm,
        "kid": service.keys[algorithm].kid,
    }
    jti = decoded.pop("jti")
    assert jti == claims.get("jti", jti)
    assert decoded.pop("iss") == ISSUER
    assert decoded.pop("aud") == ([AUDIENCE, *audiences] if audiences else AUDIENCE)
    issued_at = decoded.pop("iat")
    assert before <= issued_at <= time.time()
    assert decoded.pop("exp") == issued_at + TTL
    # An empty `scope` or `roles` is left out (RFC 9068 validators refuse them); all else stays.
    kept = {k: v for k, v in claims.items() if k != "jti" and (v or k not in ("scope", "roles"))}
    assert decoded == json_round_trip(kept)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_one_character_change_or_truncation_is_refused(
    service: Service, data: st.DataObject
) -> None:
    token = data.draw(minted(service), label="token")
    changed = data.draw(mutated(token), label="changed")
    assume(changed != token)

    # Strict: PyJWT's base64 decoding refuses non-canonical spellings (junk characters,
    # spare low bits set), so not even the signature segment has a second spelling.
    refusal(service.codec, changed)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_segments_spliced_from_two_tokens_are_refused(
    service: Service, data: st.DataObject
) -> None:
    refusal(service.codec, data.draw(spliced(service)))


@PROPERTY_SETTINGS
@given(data=st.data())
def test_arbitrary_text_is_refused_and_never_crashes(service: Service, data: st.DataObject) -> None:
    refusal(service.codec, data.draw(made_up(service)))


@PROPERTY_SETTINGS
@given(data=st.data())
def test_alg_none_hmac_with_the_public_key_and_a_wrong_key_are_refused(
    service: Service, data: st.DataObject
) -> None:
    reason = refusal(service.codec, data.draw(alg_confused(service)))

    assert reason in {"algorithm_not_allowed", "bad_signature", "malformed"}


@PROPERTY_SETTINGS
@given(algorithm=algorithms, age=st.integers(-3 * TTL, 3 * TTL))
def test_tokens_verify_only_from_issue_until_expiry_give_or_take_the_leeway(
    service: Service, algorithm: Algorithm, age: int
) -> None:
    # Whole seconds of clock reading on both sides: stay clear of the boundaries.
    assume(abs(age + LEEWAY) > 2 and abs(age - (TTL + LEEWAY)) > 2)
    now = time.time()
    codec = service.codec_like(algorithm, clock=lambda: now - age)
    token = codec.encode({"sub": "user-1"})

    if -LEEWAY < age < TTL + LEEWAY:
        assert service.codec.decode(token)["sub"] == "user-1"
    else:
        assert refusal(service.codec, token) == ("expired" if age > 0 else "not_yet_valid")


@PROPERTY_SETTINGS
@given(
    algorithm=algorithms,
    issuer=st.sampled_from([ISSUER, ISSUER + "/", ISSUER.upper()]) | unicode_text,
    audience=st.sampled_from([AUDIENCE, AUDIENCE.upper(), " " + AUDIENCE]) | unicode_text,
    extra_audiences=st.lists(st.sampled_from([AUDIENCE]) | unicode_text, max_size=2),
)
def test_only_tokens_for_this_issuer_and_audience_verify(
    service: Service,
    algorithm: Algorithm,
    issuer: str,
    audience: str,
    extra_audiences: list[str],
) -> None:
    """Tokens signed with the service's own keys, but by another issuer or for other
    audiences (a sibling deployment sharing keys), are someone else's."""
    codec = service.codec_like(algorithm, issuer=issuer, audience=audience)
    token = codec.encode({"sub": "user-1"}, audiences=extra_audiences)

    if issuer == ISSUER and AUDIENCE in [audience, *extra_audiences]:
        assert service.codec.decode(token)["sub"] == "user-1"
    else:
        # PyJWT counts an empty `aud` as absent.
        reasons = {"wrong_issuer", "wrong_audience", "missing_claim"}
        assert refusal(service.codec, token) in reasons


@PROPERTY_SETTINGS
@given(algorithm=algorithms, token_type=st.sampled_from(["at+jwt", "JWT", "jwt"]) | unicode_text)
def test_only_the_access_token_type_verifies(
    service: Service, algorithm: Algorithm, token_type: str
) -> None:
    token = sign(service.keys[algorithm], now_claims(), typ=token_type)

    if token_type.lower() in {"at+jwt", "application/at+jwt"}:
        assert service.codec.decode(token)["sub"] == "user-1"
    else:
        assert refusal(service.codec, token) == "wrong_type"


@PROPERTY_SETTINGS
@given(algorithm=algorithms, missing=st.sets(st.sampled_from(["exp", "iat", "iss", "aud", "sub"])))
def test_tokens_lacking_a_required_claim_are_refused(
    service: Service, algorithm: Algorithm, missing: set[str]
) -> None:
    claims = {name: value for name, value in now_claims().items() if name not in missing}
    token = sign(service.keys[algorithm], claims)

    if missing:
        assert refusal(service.codec, token) == "missing_claim"
    else:
        assert service.codec.decode(token) == claims


def test_a_lone_surrogate_after_a_valid_header_is_refused(service: Service) -> None:
    """A str can hold lone surrogates (a JSON body's "\\ud800" decodes to one); the codec
    reads the header itself, then PyJWT encodes the whole token to UTF-8 and fails."""
    header = b64json({"typ": "at+jwt", "alg": "RS256", "kid": service.keys["RS256"].kid})

    refusal(service.codec, f"{header}.\ud800.")
