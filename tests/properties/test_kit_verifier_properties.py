"""authsvc_kit's TokenVerifier agrees with the service's codec: it accepts exactly the tokens
the service mints, with the same claims, and refuses (with `InvalidToken`, never another
error) every token the codec refuses."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.security.access_tokens import InvalidAccessToken
from app.security.keys.signing_key import Algorithm
from authsvc_kit import InvalidToken, TokenVerifier
from tests.properties.strategies import PROPERTY_SETTINGS, access_claims, unicode_text
from tests.properties.tokens import (
    ISSUER,
    LEEWAY,
    TTL,
    Service,
    alg_confused,
    algorithms,
    made_up,
    minted,
    mutated,
    now_claims,
    sign,
    spliced,
)

Outcome = tuple[str, Any]


def service_outcome(service: Service, token: str) -> Outcome:
    try:
        return "accepted", service.codec.decode(token)
    except InvalidAccessToken:
        return "refused", None


def kit_outcome(verifier: TokenVerifier, token: str) -> Outcome:
    try:
        return "accepted", verifier.verify_cached(token).to_dict()
    except InvalidToken:
        return "refused", None


@st.composite
def candidates(draw: st.DrawFn, service: Service) -> str:
    """Every kind of token the codec properties try, valid or not."""
    valid = draw(minted(service))
    return draw(
        st.one_of(
            st.just(valid),
            mutated(valid),
            spliced(service),
            made_up(service),
            alg_confused(service),
        )
    )


@PROPERTY_SETTINGS
@given(algorithm=algorithms, claims=access_claims())
def test_the_kit_accepts_minted_tokens_with_the_claims_the_service_reads(
    service: Service, verifier: TokenVerifier, algorithm: Algorithm, claims: dict[str, Any]
) -> None:
    token = service.codecs[algorithm].encode(claims)

    verified = verifier.verify_cached(token)

    assert verified.to_dict() == service.codec.decode(token)
    assert verified.subject == claims["sub"]
    assert verified.scopes == frozenset(claims["scope"].split())
    assert verified.roles == tuple(claims["roles"])


@PROPERTY_SETTINGS
@given(data=st.data())
def test_the_kit_and_the_service_accept_and_refuse_the_same_tokens(
    service: Service, verifier: TokenVerifier, data: st.DataObject
) -> None:
    token = data.draw(candidates(service), label="token")

    assert kit_outcome(verifier, token) == service_outcome(service, token)


@PROPERTY_SETTINGS
@given(data=st.data())
async def test_async_verify_agrees_with_the_cached_check(
    service: Service, verifier: TokenVerifier, data: st.DataObject
) -> None:
    """`verify` (the FastAPI dependency's path) decides as `verify_cached` does; an unknown
    kid costs at most a refetch from the in-process JWKS, never another answer."""
    token = data.draw(candidates(service), label="token")
    try:
        outcome: Outcome = "accepted", (await verifier.verify(token)).to_dict()
    except InvalidToken:
        outcome = "refused", None

    assert outcome == kit_outcome(verifier, token)


@PROPERTY_SETTINGS
@given(algorithm=algorithms, age=st.integers(-3 * TTL, 3 * TTL))
def test_the_kit_honours_expiry_and_issue_time_like_the_service(
    service: Service, verifier: TokenVerifier, algorithm: Algorithm, age: int
) -> None:
    assume(abs(age + LEEWAY) > 2 and abs(age - (TTL + LEEWAY)) > 2)
    now = time.time()
    token = service.codec_like(algorithm, clock=lambda: now - age).encode({"sub": "user-1"})

    outcome = kit_outcome(verifier, token)

    assert outcome == service_outcome(service, token)
    assert (outcome[0] == "accepted") == (-LEEWAY < age < TTL + LEEWAY)


@PROPERTY_SETTINGS
@given(
    algorithm=algorithms,
    issuer=st.sampled_from([ISSUER, ISSUER + "/"]) | unicode_text,
    audience=st.sampled_from(["authsvc", "AUTHSVC"]) | unicode_text,
    token_type=st.sampled_from(["at+jwt", "application/AT+JWT", "JWT"]) | unicode_text,
)
def test_the_kit_checks_issuer_audience_and_type_like_the_service(
    service: Service,
    verifier: TokenVerifier,
    algorithm: Algorithm,
    issuer: str,
    audience: str,
    token_type: str,
) -> None:
    token = sign(service.keys[algorithm], now_claims(iss=issuer, aud=audience), typ=token_type)

    assert kit_outcome(verifier, token) == service_outcome(service, token)


def test_the_kit_refuses_a_lone_surrogate_after_a_valid_header(
    service: Service, verifier: TokenVerifier
) -> None:
    valid = service.codecs["EdDSA"].encode({"sub": "user-1"})
    header = valid.partition(".")[0]

    with pytest.raises(InvalidToken):
        verifier.verify_cached(f"{header}.\ud800.")
