"""Two-step sign-in as a client does it: enrol an authenticator, answer `mfa_required`.

Codes are computed with `pyotp`, as an authenticator app computes them, for the time the
service's clock shows (the `clock` fixture) or the real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pyotp

from tests.support.flows import PASSWORD, bearer, password_grant

MFA_GRANT = "urn:authsvc:params:oauth:grant-type:mfa"


@dataclass(frozen=True, slots=True)
class Enrolled:
    """An account with a confirmed authenticator: its secret and recovery codes."""

    secret: str
    recovery_codes: list[str]

    def code(self, at: datetime | None = None, *, steps: int = 0) -> str:
        """The authenticator's code at `at` (default: now), `steps` time steps later."""
        moment = (at or datetime.now(UTC)).timestamp() + steps * 30
        return pyotp.TOTP(self.secret).at(moment)


async def enrol_totp(
    client: httpx.AsyncClient, access_token: str, *, at: datetime | None = None
) -> Enrolled:
    """Enrol and confirm an authenticator for the owner of `access_token` (signed in
    recently), with the code of `at` (default: now)."""
    started = await client.post("/users/me/mfa/totp", headers=bearer(access_token))
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    code = pyotp.TOTP(secret).at(at or datetime.now(UTC))
    confirmed = await client.post(
        "/users/me/mfa/totp/confirm", json={"code": code}, headers=bearer(access_token)
    )
    assert confirmed.status_code == 200, confirmed.text
    return Enrolled(secret, confirmed.json()["recovery_codes"])


async def mfa_grant(client: httpx.AsyncClient, mfa_token: str, **answer: str) -> httpx.Response:
    """The second step: `otp=...` or `recovery_code=...` (and client fields)."""
    return await client.post(
        "/auth/token", data={"grant_type": MFA_GRANT, "mfa_token": mfa_token, **answer}
    )


async def mfa_token_for(
    client: httpx.AsyncClient, username: str = "ada@example.com", password: str = PASSWORD
) -> str:
    """The `mfa_token` a right password earns an account with an authenticator."""
    response = await password_grant(client, username, password)
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "mfa_required", body
    token: str = body["mfa_token"]
    return token


async def sign_in_with_totp(
    client: httpx.AsyncClient,
    enrolled: Enrolled,
    username: str = "ada@example.com",
    *,
    at: datetime | None = None,
    steps: int = 0,
) -> dict[str, Any]:
    """Both steps of a sign-in, with the authenticator's code of `at` (+`steps`)."""
    mfa_token = await mfa_token_for(client, username)
    response = await mfa_grant(client, mfa_token, otp=enrolled.code(at, steps=steps))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
