"""Keys read from PEM text: one private key, or a bundle of public keys, as they come from
settings, environment variables and key files."""

from __future__ import annotations

import re
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from app.security.keys.errors import KeyConfigurationError
from app.security.keys.signing_key import PrivateKey, PublicKey

_PUBLIC_PEM_BLOCK: Final = re.compile(
    r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL
)


def _unsupported_key(key: object, source: str) -> KeyConfigurationError:
    return KeyConfigurationError(
        f"{source}: unsupported key type {type(key).__name__}; "
        "use RSA (>= 2048 bits), EC P-256 or Ed25519"
    )


def _supported_private_key(key: object, source: str) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise _unsupported_key(key, source)


def _supported_public_key(key: object, source: str) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise _unsupported_key(key, source)


def _unescape_pem(pem: str) -> str:
    # Environment variables often carry PEM with literal "\n" (docker, CI secrets).
    return pem.replace("\\n", "\n") if "\n" not in pem.strip() else pem


def load_private_key_pem(pem: str | bytes, *, source: str = "private key") -> PrivateKey:
    """An unencrypted PEM private key (PKCS#8 or traditional); `source` names it in errors."""
    data = _unescape_pem(pem.decode("utf-8", "replace") if isinstance(pem, bytes) else pem)
    try:
        key = serialization.load_pem_private_key(data.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # The message names the source only: never echo key material.
        raise KeyConfigurationError(f"{source} is not an unencrypted PEM private key") from exc
    return _supported_private_key(key, source)


def load_public_keys_pem(bundle: str, *, source: str = "public keys") -> list[PublicKey]:
    """Every `BEGIN PUBLIC KEY` block of a PEM bundle (empty or blank: none)."""
    text = _unescape_pem(bundle)
    if not text.strip():
        return []
    blocks = _PUBLIC_PEM_BLOCK.findall(text)
    if not blocks:
        raise KeyConfigurationError(f"{source} holds no PEM public key (BEGIN PUBLIC KEY)")
    keys: list[PublicKey] = []
    for number, block in enumerate(blocks, start=1):
        try:
            key = serialization.load_pem_public_key(block.encode("utf-8"))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyConfigurationError(f"{source}: key #{number} is not valid PEM") from exc
        keys.append(_supported_public_key(key, source))
    return keys
