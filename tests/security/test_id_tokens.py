"""IdTokenSigner: ID tokens signed with the key ring's current key, with `at_hash` by the
signing algorithm's hash, and never taken for an access token by the codec."""

from __future__ import annotations

import jwt
import pytest
from authlib.oidc.core.util import create_half_hash

from app.security.access_tokens import AccessTokenCodec, InvalidAccessToken
from app.security.id_tokens import IdTokenSigner, half_hash
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SUPPORTED_ALGORITHMS, Algorithm, SigningKey

ISSUER = "https://auth.example"
CLIENT = "authsvc-web"
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.an-access-token.signature"


@pytest.fixture(scope="module")
def keys() -> dict[Algorithm, SigningKey]:
    """One key per algorithm, generated once: RSA generation is slow."""
    return {algorithm: SigningKey.generate(algorithm) for algorithm in SUPPORTED_ALGORITHMS}


def codec_for(key: SigningKey, *, audience: str = "authsvc") -> AccessTokenCodec:
    return AccessTokenCodec(KeyRing(key), issuer=ISSUER, audience=audience, ttl_seconds=900)


@pytest.mark.parametrize("algorithm", SUPPORTED_ALGORITHMS)
def test_an_id_token_verifies_with_the_ring_key_its_kid_names(
    keys: dict[Algorithm, SigningKey], algorithm: Algorithm
) -> None:
    key = keys[algorithm]
    signer = IdTokenSigner.alongside(codec_for(key))

    token = signer.sign({"sub": "user-1"}, audience=CLIENT, access_token=ACCESS_TOKEN)

    header = jwt.get_unverified_header(token)
    assert (header["typ"], header["kid"], header["alg"]) == ("JWT", key.kid, algorithm)
    claims = jwt.decode(
        token, key.public_key, algorithms=[algorithm], audience=CLIENT, issuer=ISSUER
    )
    assert claims["aud"] == CLIENT  # a single string, not a list
    assert claims["exp"] - claims["iat"] == 900
    # Authlib, as a relying party, computes the same hash for this algorithm.
    assert claims["at_hash"] == half_hash(ACCESS_TOKEN, algorithm)
    assert claims["at_hash"] == create_half_hash(ACCESS_TOKEN, algorithm).decode()


def test_at_hash_is_half_of_the_algorithms_hash() -> None:
    assert len(half_hash(ACCESS_TOKEN, "RS256")) == 22  # 16 bytes of SHA-256
    assert len(half_hash(ACCESS_TOKEN, "EdDSA")) == 43  # 32 bytes of SHA-512


def test_no_at_hash_without_an_access_token(keys: dict[Algorithm, SigningKey]) -> None:
    signer = IdTokenSigner.alongside(codec_for(keys["RS256"]))

    token = signer.sign({"sub": "user-1"}, audience=CLIENT)

    assert "at_hash" not in jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize("claim", ["iss", "aud", "iat", "exp", "at_hash"])
def test_the_signer_sets_its_own_claims(keys: dict[Algorithm, SigningKey], claim: str) -> None:
    signer = IdTokenSigner.alongside(codec_for(keys["RS256"]))

    with pytest.raises(ValueError, match=claim):
        signer.sign({"sub": "user-1", claim: "forced"}, audience=CLIENT)


def test_the_access_token_codec_refuses_an_id_token_even_for_the_clients_audience(
    keys: dict[Algorithm, SigningKey],
) -> None:
    """Even a codec whose audience is the client's id (a misconfiguration) refuses it: an ID
    token's `typ` is `JWT`, not `at+jwt`."""
    codec = codec_for(keys["RS256"], audience=CLIENT)
    token = IdTokenSigner.alongside(codec).sign(
        {"sub": "user-1", "sid": "s-1", "ver": 0}, audience=CLIENT
    )

    with pytest.raises(InvalidAccessToken) as refused:
        codec.decode(token)

    assert refused.value.reason == "wrong_type"
