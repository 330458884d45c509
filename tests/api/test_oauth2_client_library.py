"""A standard OAuth2 client library (Authlib) signs in, refreshes and revokes."""

from __future__ import annotations

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI

from tests.support.flows import PASSWORD, register

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
    from authlib.integrations.base_client.errors import OAuthError

    await register(client)

    async with authlib_client(app) as oauth:
        with pytest.raises(OAuthError) as refused:
            await oauth.fetch_token(
                "http://testserver/auth/token",
                username="ada@example.com",
                password="not the right password",
            )

    assert refused.value.error == "invalid_grant"
