"""One signing key: its algorithm, its `kid` (the RFC 7638 thumbprint) and its JWK form.

The service signs with RS256 (RSA, 2048 bits at least), ES256 (EC P-256) or EdDSA (Ed25519);
`algorithm_for` refuses every other key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Literal, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from app.security.keys.errors import KeyConfigurationError

Algorithm = Literal["RS256", "ES256", "EdDSA"]
SUPPORTED_ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# 2048 bits is what RFC 7518 requires and what the large identity providers sign with.
RSA_KEY_SIZE: Final = 2048
MIN_RSA_KEY_SIZE: Final = 2048


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _required_jwk_members(public_key: PublicKey) -> dict[str, str]:
    """The JWK members RFC 7638 hashes: exactly the key material, nothing else."""
    if isinstance(public_key, rsa.RSAPublicKey):
        rsa_numbers = public_key.public_numbers()
        return {"e": _b64url_uint(rsa_numbers.e), "kty": "RSA", "n": _b64url_uint(rsa_numbers.n)}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        ec_numbers = public_key.public_numbers()
        size = (public_key.curve.key_size + 7) // 8  # coordinates are fixed-length (RFC 7518)
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(ec_numbers.x.to_bytes(size, "big")),
            "y": _b64url(ec_numbers.y.to_bytes(size, "big")),
        }
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}


def jwk_thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the key's `kid`."""
    canonical = json.dumps(_required_jwk_members(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def algorithm_for(public_key: object) -> Algorithm:
    """The algorithm a key signs with; `KeyConfigurationError` for keys this service refuses."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_KEY_SIZE:
            raise KeyConfigurationError(
                f"RSA key of {public_key.key_size} bits; RS256 needs at least {MIN_RSA_KEY_SIZE}"
            )
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise KeyConfigurationError(
                f"EC key on curve {public_key.curve.name}; ES256 needs P-256 (secp256r1)"
            )
        return "ES256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise KeyConfigurationError(
        f"unsupported key type {type(public_key).__name__}: "
        "use RSA (>= 2048 bits) for RS256, EC P-256 for ES256 or Ed25519 for EdDSA"
    )


def _checked_algorithm(public_key: object, algorithm: Algorithm | None) -> Algorithm:
    actual = algorithm_for(public_key)
    if algorithm is not None and algorithm != actual:
        raise KeyConfigurationError(f"the key is a {actual} key, not fit for {algorithm}")
    return actual


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A token-signing key pair. Retired and configured previous keys carry only the public
    half: they verify and are published, but never sign again.

    Build instances with `generate`, `from_private_key` or `from_public_key`, which derive
    `kid` and check that the key fits `algorithm`.
    """

    kid: str
    algorithm: Algorithm
    public_key: PublicKey
    private_key: PrivateKey | None = field(default=None, repr=False)
    # Retired keys: published and accepted until then (UTC). None: as long as configured.
    publish_until: datetime | None = None

    @classmethod
    def generate(cls, algorithm: Algorithm) -> SigningKey:
        """A fresh key pair for `algorithm`."""
        private_key: PrivateKey
        if algorithm == "RS256":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
        elif algorithm == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "EdDSA":
            private_key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise KeyConfigurationError(f"unsupported algorithm {algorithm!r}")
        return cls.from_private_key(private_key, algorithm=algorithm)

    @classmethod
    def from_private_key(
        cls, private_key: PrivateKey, *, algorithm: Algorithm | None = None
    ) -> SigningKey:
        """Wrap a private key; `algorithm` (if given) must match the key's type."""
        public_key = private_key.public_key()
        return cls(
            kid=jwk_thumbprint(public_key),
            algorithm=_checked_algorithm(public_key, algorithm),
            public_key=public_key,
            private_key=private_key,
        )

    @classmethod
    def from_public_key(
        cls,
        public_key: PublicKey,
        *,
        algorithm: Algorithm | None = None,
        publish_until: datetime | None = None,
    ) -> SigningKey:
        """A verification-only key; `algorithm` (if given) must match the key's type."""
        return cls(
            kid=jwk_thumbprint(public_key),
            algorithm=_checked_algorithm(public_key, algorithm),
            public_key=public_key,
            publish_until=publish_until,
        )

    def retired(self, publish_until: datetime) -> SigningKey:
        """This key without its private half, published until `publish_until`."""
        return replace(self, private_key=None, publish_until=publish_until)

    def is_published_at(self, now: datetime) -> bool:
        return self.publish_until is None or now < self.publish_until

    def public_jwk(self) -> dict[str, str]:
        """RFC 7517 JWK of the public key, with `kid`, `alg` and `use: sig`."""
        return {
            **_required_jwk_members(self.public_key),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }
