"""A standard OAuth2 client library (Authlib) signs in, refreshes and revokes, and answers
the `mfa_required` challenge of two-step sign-in with the MFA grant."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI

from tests.support.flows import PASSWORD, register, register_and_sign_in
from tests.support.mfa import MFA_GRANT, enrol_totp
from tests.support.state import FrozenClock

TOKEN_URL = "http://testserver/auth/token"

pytestmark = pytest.mark.usefixtures("app")


def authlib_client(app: FastAPI) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id="authsvc-web",
        token_endpoint_auth_method="none",
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
    )


async def test_authlib_password_grant_refresh_and_revoke(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(client)

    async with authlib_client(app) as oauth:
        token = await oauth.fetch_token(
            "http://testserver/auth/token", username="ada@example.com", password=PASSWORD
        )
        assert token["token_type"] == "bearer"
        me = await oauth.get("http://testserver/users/me")
        assert me.status_code == 200

        refreshed = await oauth.refresh_token(
            "http://testserver/auth/token", refresh_token=token["refresh_token"]
        )
        assert refreshed["access_token"] != token["access_token"]

        revoked = await oauth.revoke_token(
            "http://testserver/auth/revoke", token=refreshed["refresh_token"]
        )
        assert revoked.status_code == 200


async def test_authlib_surfaces_the_oauth_error(app: FastAPI, client: httpx.AsyncClient) -> None:
    await register(client)

    async with authlib_client(app) as oauth:
        with pytest.raises(OAuthError) as refused:
            await oauth.fetch_token(
                "http://testserver/auth/token",
                username="ada@example.com",
                password="not the right password",
            )

    assert refused.value.error == "invalid_grant"


async def test_authlib_gets_mfa_required_as_an_oauth_error_then_signs_in_with_the_mfa_grant(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """As the README shows it: Authlib raises `OAuthError("mfa_required")` for the password
    grant; its exception carries only `error` and `error_description`, so the client keeps the
    rest of the body (the `mfa_token`) with Authlib's own response hook, and sends it back
    with `fetch_token(grant_type=...mfa)`. No patch of the library."""
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    challenge: dict[str, Any] = {}

    def keep_mfa_challenge(response: httpx.Response) -> httpx.Response:
        if response.status_code == 403 and response.json().get("error") == "mfa_required":
            challenge.update(response.json())
        return response

    async with authlib_client(app) as oauth:
        oauth.register_compliance_hook("access_token_response", keep_mfa_challenge)
        with pytest.raises(OAuthError) as refused:
            await oauth.fetch_token(TOKEN_URL, username="ada@example.com", password=PASSWORD)
        assert refused.value.error == "mfa_required"
        assert refused.value.description
        assert oauth.token is None  # nothing was issued

        token = await oauth.fetch_token(
            TOKEN_URL,
            grant_type=MFA_GRANT,
            mfa_token=challenge["mfa_token"],
            otp=enrolled.code(clock.now, steps=1),
        )
        me = await oauth.get("http://testserver/users/me")

    assert challenge["expires_in"] > 0
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["acr"] == "aal2"
    assert claims["amr"] == ["pwd", "otp"]
    assert token["refresh_token"]
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
