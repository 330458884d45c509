"""Proof Key for Code Exchange (RFC 7636) with the S256 method, the only one accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# A verifier is 43 to 128 unreserved characters (RFC 7636 section 4.1); an S256 challenge is
# the unpadded base64url of a SHA-256 digest: exactly 43 characters.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def is_s256_challenge(challenge: str) -> bool:
    """Whether `challenge` has the shape of an S256 code challenge."""
    return _CHALLENGE.fullmatch(challenge) is not None


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether `verifier` is well formed and hashes to `challenge` (compared in constant
    time)."""
    if _VERIFIER.fullmatch(verifier) is None:
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
