"""Which published keys the kit accepts at all, and that it stands alone from the service."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authsvc_kit.jwks import parse_jwk, parse_jwks


def public_jwk(private_key: Any, algorithm: str, **members: Any) -> dict[str, Any]:
    jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(private_key.public_key()))
    return {**jwk, "kid": "k1", "alg": algorithm, "use": "sig", **members}


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("private_key", "algorithm"),
    [
        (RSA, "RS256"),
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    ],
)
def test_the_services_key_types_are_accepted(private_key: Any, algorithm: str) -> None:
    key = parse_jwk(public_jwk(private_key, algorithm))

    assert key is not None
    assert (key.kid, key.algorithm, key.algorithms) == ("k1", algorithm, (algorithm,))


@pytest.mark.parametrize(
    "jwk",
    [
        public_jwk(RSA, "RS256", use="enc"),
        public_jwk(RSA, "RS256", kid=None),
        public_jwk(RSA, "RS256", kid=""),
        public_jwk(RSA, "RS256", alg="ES256"),  # the key does not fit the algorithm it claims
        public_jwk(RSA, "RS256", alg="HS256"),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "k1", "alg": "HS256"},
        json.loads(jwt.get_algorithm_by_name("RS256").to_jwk(RSA)) | {"kid": "k1"},  # private
        public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "RS256"),  # noqa: S505
        public_jwk(ec.generate_private_key(ec.SECP384R1()), "ES384", alg="ES256"),
        {"kid": "k1", "kty": "RSA"},
        "not a key",
    ],
    ids=[
        "encryption-key",
        "no-kid",
        "empty-kid",
        "mismatched-alg",
        "hmac-alg",
        "symmetric",
        "private",
        "rsa-1024",
        "p384-as-es256",
        "no-material",
        "not-an-object",
    ],
)
def test_unfit_keys_are_skipped(jwk: Any) -> None:
    assert parse_jwk(jwk) is None


def test_a_set_keeps_the_usable_keys_and_the_first_of_a_duplicated_kid() -> None:
    good = public_jwk(RSA, "RS256")
    other = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")

    keys = parse_jwks({"keys": [{"kty": "oct", "kid": "x"}, good, other]})

    assert list(keys) == ["k1"]
    assert keys["k1"].jwk.key.public_numbers() == RSA.public_key().public_numbers()


@pytest.mark.parametrize("document", [{}, {"keys": {}}, [], None])
def test_a_document_that_is_no_key_set_is_refused(document: Any) -> None:
    with pytest.raises(ValueError, match="JWK Set"):
        parse_jwks(document)


def test_the_kit_imports_nothing_from_the_service() -> None:
    code = (
        "import sys, authsvc_kit, authsvc_kit.fastapi\n"
        "leaked = sorted(m for m in sys.modules if m == 'app' or m.startswith('app.'))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
