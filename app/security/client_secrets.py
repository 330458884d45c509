"""Service-client credentials: a public `client_id` and a 256-bit secret kept only as a digest."""

from __future__ import annotations

import hmac
import secrets
from typing import Protocol

from app.security.opaque_tokens import new_opaque_token, token_digest


class HoldsSecretDigest(Protocol):
    """Anything that keeps a client secret's digest (a stored client; None for a public
    client, which has no secret)."""

    @property
    def secret_hash(self) -> str | None: ...


# 16 random bytes: unguessable enough that ids cannot be enumerated, short enough to read.
CLIENT_ID_BYTES = 16


def new_client_id() -> str:
    """A fresh public identifier. URL-safe and free of ':', so it fits HTTP Basic auth."""
    return secrets.token_urlsafe(CLIENT_ID_BYTES)


def new_client_secret() -> str:
    """A fresh 256-bit secret, shown once to whoever creates the client."""
    return new_opaque_token()


def client_secret_digest(secret: str) -> str:
    """The digest stored in place of the secret: plain SHA-256 (hex).

    No salt or stretching is needed: the secret carries 256 random bits, so a leaked digest
    cannot be brute-forced, and a slow hash would only make every token request slower.
    """
    return token_digest(secret)


def secret_matches(digest: str, secret: str) -> bool:
    """Whether `secret` hashes to the stored `digest`, compared in constant time."""
    # As bytes: compare_digest refuses str with non-ASCII characters instead of answering.
    return hmac.compare_digest(digest.encode(), client_secret_digest(secret).encode())


def verify_client_secret(client: HoldsSecretDigest, secret: str) -> bool:
    """Whether `secret` is the client's secret, compared in constant time (never, for a
    client without one)."""
    return client.secret_hash is not None and secret_matches(client.secret_hash, secret)
