"""Opaque bearer secrets (refresh tokens, mailed one-time tokens) and their stored digests."""

from __future__ import annotations

import hashlib
import secrets

# 32 random bytes = 256 bits, more than any guessing or birthday bound needs.
TOKEN_BYTES = 32


def new_opaque_token() -> str:
    """A fresh random token, URL-safe. Only its digest is ever stored."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """SHA-256 hex digest used to store and look up a token.

    A fast hash suffices (no salt, no stretching): the input is 256 random bits, so there is
    nothing to brute-force, and a deterministic digest allows an indexed lookup.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
