"""The `WWW-Authenticate` challenges of bearer-protected routes, read as a client reads them."""

from __future__ import annotations

import re
from typing import Final

import httpx

from tests.support.flows import assert_problem

# What a 401 asks for when an operation needs a step-up (RFC 9470): a sign-in that passed the
# second factor, at most AUTH_REAUTH_MAX_AGE_SECONDS (300) ago.
STEP_UP: Final = {
    "error": "insufficient_user_authentication",
    "acr_values": "aal2",
    "max_age": "300",
}

_PARAMETER = re.compile(r'([\w-]+)=(?:"([^"]*)"|([^,\s]+))')


def bearer_challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a 401 problem's `Bearer` challenge (RFC 6750 section 3)."""
    assert_problem(response, 401)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    return {name: quoted or bare for name, quoted, bare in _PARAMETER.findall(challenge)}
