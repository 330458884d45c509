"""How a sign-in proved who the user is: RFC 8176 `amr` values and the `acr` they add up to.

A session records both when it starts; every access token of the session carries them, and a
refresh keeps them, so no refresh can raise them. `aal2` (NIST SP 800-63B) needs a second
factor besides the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# First factors.
PASSWORD: Final = "pwd"
FEDERATED: Final = "fed"  # a sign-in at an external provider (GitHub, Google, OIDC)
# Second factors.
TOTP: Final = "otp"
# A single-use recovery code (a NIST "look-up secret"); not in RFC 8176's registry, which has
# no value for it, and deliberately not "otp": a resource server can tell the two apart.
RECOVERY_CODE: Final = "rc"

SECOND_FACTORS: Final = frozenset({TOTP, RECOVERY_CODE})

AAL1: Final = "aal1"
AAL2: Final = "aal2"


def assurance_level(methods: Iterable[str]) -> str:
    """`aal2` when a second factor is among `methods`, else `aal1`."""
    return AAL2 if SECOND_FACTORS.intersection(methods) else AAL1


def methods_of(amr: str) -> list[str]:
    """A session's stored `amr` (space-separated) as the claim's list."""
    return amr.split()
