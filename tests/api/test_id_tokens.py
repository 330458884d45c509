"""ID tokens (OpenID Connect Core 2, 3.1.3.6): every user token response whose scope has
`openid` carries one, which a client verifies against the JWKS, and which no API takes for an
access token."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import jwt
import pytest
from authlib.oidc.core import CodeIDToken
from joserfc.errors import InvalidClaimError

from app.config import Settings
from authsvc_kit import InvalidToken, JWKSCache, TokenVerifier
from tests.support.admins import register_public_client
from tests.support.flows import (
    bearer,
    introspect,
    password_grant,
    refresh,
    register,
    user_id,
)
from tests.support.mfa import enrol_totp, mfa_grant
from tests.support.state import FrozenClock

pytestmark = pytest.mark.usefixtures("app")

FIRST_PARTY_CLIENT = "authsvc-web"


async def sign_in(client: httpx.AsyncClient, scope: str = "openid", **form: str) -> dict[str, Any]:
    response = await password_grant(client, "ada@example.com", scope=scope, **form)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verified(
    client: httpx.AsyncClient, settings: Settings, id_token: str, audience: str = FIRST_PARTY_CLIENT
) -> dict[str, Any]:
    """The ID token's claims as a relying party checks them: signature by the key its `kid`
    names in the published JWKS, issuer, audience, expiry."""
    jwks = jwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    header = jwt.get_unverified_header(id_token)
    key = jwks[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        id_token,
        key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=settings.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    return claims


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def test_a_sign_in_asking_for_openid_gets_an_id_token_the_jwks_verifies(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await register(client, "ada@example.com", username="ada", full_name="Ada Lovelace")

    tokens = await sign_in(client)

    assert tokens["scope"] == "openid"
    header = jwt.get_unverified_header(tokens["id_token"])
    assert header["typ"] == "JWT"
    assert header["alg"] == "RS256"
    claims = await verified(client, settings, tokens["id_token"])
    access = unverified(tokens["access_token"])
    assert claims["sub"] == access["sub"] == await user_id(client, bearer(tokens["access_token"]))
    assert claims["aud"] == claims["azp"] == FIRST_PARTY_CLIENT
    assert claims["sid"] == access["sid"]
    assert claims["auth_time"] == access["auth_time"]
    assert (claims["acr"], claims["amr"]) == ("aal1", ["pwd"])
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    assert header["kid"] == jwt.get_unverified_header(tokens["access_token"])["kid"]
    # Asked for openid alone: no nonce was given, and no profile or email claims.
    assert not {"nonce", "email", "email_verified", "name", "preferred_username"} & claims.keys()


async def test_at_hash_is_the_left_half_of_the_access_tokens_sha256(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")

    tokens = await sign_in(client)

    digest = hashlib.sha256(tokens["access_token"].encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert unverified(tokens["id_token"])["at_hash"] == expected


async def test_authlibs_id_token_validation_accepts_it(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await register(client, "ada@example.com")
    tokens = await sign_in(client, "openid email")

    claims = CodeIDToken(
        await verified(client, settings, tokens["id_token"]),
        jwt.get_unverified_header(tokens["id_token"]),
        options={"iss": {"essential": True, "value": settings.issuer}},
        params={"client_id": FIRST_PARTY_CLIENT, "access_token": tokens["access_token"]},
    )

    claims.validate()  # at_hash against the access token, azp against the client, ...
    tampered = CodeIDToken(
        dict(claims),
        jwt.get_unverified_header(tokens["id_token"]),
        params={"access_token": tokens["access_token"] + "x"},
    )
    with pytest.raises(InvalidClaimError, match="at_hash"):
        tampered.validate()


@pytest.mark.parametrize("scope", [None, "", "profile email"])
async def test_no_id_token_without_openid(client: httpx.AsyncClient, scope: str | None) -> None:
    await register(client, "ada@example.com")

    response = await password_grant(
        client, "ada@example.com", **({"scope": scope} if scope is not None else {})
    )

    assert response.status_code == 200, response.text
    assert "id_token" not in response.json()


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("openid email", {"email": "ada@example.com", "email_verified": False}),
        ("openid profile", {"name": "Ada Lovelace", "preferred_username": "ada"}),
        (
            "openid profile email",
            {
                "email": "ada@example.com",
                "email_verified": False,
                "name": "Ada Lovelace",
                "preferred_username": "ada",
            },
        ),
    ],
)
async def test_the_claims_about_the_user_follow_the_scope(
    client: httpx.AsyncClient, scope: str, expected: dict[str, Any]
) -> None:
    await register(client, "ada@example.com", username="ada", full_name="Ada Lovelace")

    tokens = await sign_in(client, scope)

    claims = unverified(tokens["id_token"])
    about_user = {"email", "email_verified", "name", "preferred_username"}
    assert {name: claims[name] for name in about_user & claims.keys()} == expected


async def test_profile_leaves_out_a_name_and_username_the_account_has_not(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")

    tokens = await sign_in(client, "openid profile")

    assert not {"name", "preferred_username"} & unverified(tokens["id_token"]).keys()


async def test_offline_access_is_granted_to_whoever_asks(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    tokens = await sign_in(client, "openid offline_access")

    assert tokens["scope"] == "offline_access openid"
    assert "offline_access" in unverified(tokens["access_token"])["scope"].split()


async def test_the_audience_is_the_client_that_signed_in(
    client: httpx.AsyncClient, settings: Settings, root: dict[str, str]
) -> None:
    spa = await register_public_client(
        client, root, is_first_party=True, grant_types=["password", "refresh_token"]
    )
    await register(client, "ada@example.com")

    tokens = await sign_in(client, client_id=spa)

    claims = await verified(client, settings, tokens["id_token"], audience=spa)
    assert claims["aud"] == claims["azp"] == spa


async def test_a_two_step_sign_in_says_so_in_the_id_token(
    client: httpx.AsyncClient, settings: Settings, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    first = await sign_in(client)
    enrolled = await enrol_totp(client, first["access_token"], at=clock.now)
    challenge = await password_grant(client, "ada@example.com", scope="openid email")
    assert challenge.status_code == 403, challenge.text

    response = await mfa_grant(
        client, challenge.json()["mfa_token"], otp=enrolled.code(clock.now, steps=1)
    )

    assert response.status_code == 200, response.text
    claims = await verified(client, settings, response.json()["id_token"])
    assert (claims["acr"], claims["amr"]) == ("aal2", ["pwd", "otp"])
    assert claims["auth_time"] == int(clock.now.timestamp())
    assert claims["email"] == "ada@example.com"


async def test_a_refresh_gives_a_new_id_token_of_the_same_sign_in(
    client: httpx.AsyncClient, settings: Settings, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    tokens = await sign_in(client, "openid email")
    clock.advance(minutes=20)

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    renewed = response.json()
    before = await verified(client, settings, tokens["id_token"])
    after = await verified(client, settings, renewed["id_token"])
    assert renewed["id_token"] != tokens["id_token"]
    for name in ("sub", "aud", "azp", "sid", "auth_time", "acr", "amr", "email"):
        assert after[name] == before[name], name
    assert unverified(renewed["id_token"])["at_hash"] != before["at_hash"]


async def test_an_id_token_is_not_an_access_token(
    client: httpx.AsyncClient, resource_server: dict[str, str]
) -> None:
    await register(client, "ada@example.com")
    tokens = await sign_in(client)

    me = await client.get("/users/me", headers=bearer(tokens["id_token"]))
    userinfo = await client.get("/oauth/userinfo", headers=bearer(tokens["id_token"]))

    for response in (me, userinfo):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert await introspect(client, resource_server, tokens["id_token"]) == {"active": False}


# A resource server configured as it should be (this service's audience), and one that took
# the client's id for its audience: the `typ` check refuses the ID token before any other.
@pytest.mark.parametrize("audience", [None, FIRST_PARTY_CLIENT])
async def test_the_consumer_kit_refuses_an_id_token(
    client: httpx.AsyncClient, settings: Settings, audience: str | None
) -> None:
    await register(client, "ada@example.com")
    tokens = await sign_in(client)
    jwks = JWKSCache("http://testserver/.well-known/jwks.json", http_client=client)
    verifier = TokenVerifier(settings.issuer, audience or settings.jwt_audience, jwks)

    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(tokens["id_token"])

    assert refused.value.reason == "wrong_type"
