"""An unmodified OpenID Connect client library (Authlib) signs a user in with the code flow and
PKCE against the discovery document, verifies the ID token with its own `CodeIDToken` rules
(issuer, audience, nonce, at_hash) against the published keys, and reads userinfo."""

from __future__ import annotations

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken
from fastapi import FastAPI

from tests.support.authorization import (
    approve,
    location,
    query_of,
    register_relying_party,
    sign_in_on_page,
)
from tests.support.flows import register


async def test_authlib_completes_the_code_flow_and_verifies_the_id_token(
    app: FastAPI, client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    await register(client, "ada@example.com", full_name="Ada Lovelace")
    rp = await register_relying_party(client, root)
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    issuer = metadata["issuer"]

    async with AsyncOAuth2Client(
        client_id=rp.client_id,
        client_secret=rp.client_secret,
        scope="openid profile email",
        redirect_uri=rp.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        transport=httpx.ASGITransport(app=app),
    ) as oauth:
        verifier, nonce = generate_token(48), generate_token(20)
        url, state = oauth.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )

        # The browser: one host for its cookies, as a real browser sees the issuer's.
        started = await client.get(url.removeprefix(issuer))
        signed_in = await sign_in_on_page(client, location(started))
        approved = await approve(client, await client.get(location(signed_in)))
        callback = location(approved)
        assert query_of(callback)["iss"] == issuer  # RFC 9207
        assert query_of(callback)["state"] == state

        token = await oauth.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        keys = JsonWebKey.import_key_set((await client.get("/.well-known/jwks.json")).json())
        claims = jwt.decode(
            token["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"values": [issuer]}, "aud": {"values": [rp.client_id]}},
            claims_params={"nonce": nonce, "access_token": token["access_token"]},
        )
        claims.validate()
        userinfo = (await oauth.get(metadata["userinfo_endpoint"])).json()

    assert claims["nonce"] == nonce
    assert claims["name"] == "Ada Lovelace"
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["email"] == "ada@example.com"
