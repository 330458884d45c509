"""Protected routes accept only valid, current access tokens of this service."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from tests.support.admins import delete_user
from tests.support.flows import bearer, register_and_sign_in
from tests.support.state import forge_user

pytestmark = pytest.mark.usefixtures("app")


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def forge(claims: dict[str, Any], header: dict[str, Any], key: Any, algorithm: str) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def status_with(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/users/me", headers=bearer(token))).status_code


async def test_alg_none_is_rejected(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)
    header = jwt.get_unverified_header(tokens["access_token"])
    unsigned = f"{b64({**header, 'alg': 'none'})}.{b64(claims_of(tokens['access_token']))}."

    assert await status_with(client, unsigned) == 401


async def test_hs256_signed_with_the_public_key_is_rejected(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)
    header = jwt.get_unverified_header(tokens["access_token"])
    jwk = next(
        k
        for k in (await client.get("/.well-known/jwks.json")).json()["keys"]
        if k["kid"] == header["kid"]
    )
    public_pem = jwt.algorithms.RSAAlgorithm.from_jwk(jwk).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    segments = [b64({**header, "alg": "HS256"}), b64(claims_of(tokens["access_token"]))]
    signing_input = ".".join(segments).encode()
    import hashlib
    import hmac

    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    forged = ".".join([*segments, base64.urlsafe_b64encode(signature).rstrip(b"=").decode()])

    assert await status_with(client, forged) == 401


async def test_tampered_payload_is_rejected(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)
    header, _, signature = tokens["access_token"].split(".")
    claims = {**claims_of(tokens["access_token"]), "roles": ["admin"]}

    assert await status_with(client, f"{header}.{b64(claims)}.{signature}") == 401


async def test_token_signed_by_a_foreign_key_with_our_kid_is_rejected(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(client)
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = jwt.get_unverified_header(tokens["access_token"])

    forged = forge(claims_of(tokens["access_token"]), header, foreign_key, "RS256")

    assert await status_with(client, forged) == 401


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 120},
        {"aud": "some-other-service"},
        {"iss": "https://evil.example"},
    ],
)
async def test_expired_or_foreign_claims_are_rejected_even_if_well_signed(
    client: httpx.AsyncClient, settings: Settings, change: dict[str, Any]
) -> None:
    from app.security.keys.loading import load_key_ring

    tokens = await register_and_sign_in(client)
    ring = load_key_ring(settings)
    header = jwt.get_unverified_header(tokens["access_token"])
    claims = {**claims_of(tokens["access_token"]), **change}

    forged = forge(claims, header, ring.signing_key.private_key, "RS256")

    assert await status_with(client, forged) == 401


async def test_unknown_kid_is_rejected(client: httpx.AsyncClient, settings: Settings) -> None:
    from app.security.keys.loading import load_key_ring

    tokens = await register_and_sign_in(client)
    ring = load_key_ring(settings)
    header = {**jwt.get_unverified_header(tokens["access_token"]), "kid": "unknown"}

    forged = forge(claims_of(tokens["access_token"]), header, ring.signing_key.private_key, "RS256")

    assert await status_with(client, forged) == 401


async def test_garbage_is_rejected_with_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/me", headers=bearer("garbage"))

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_token_of_a_deleted_user_is_rejected(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    tokens = await register_and_sign_in(client)
    await delete_user(session, "ada@example.com")

    assert await status_with(client, tokens["access_token"]) == 401


async def test_token_with_an_outdated_version_is_rejected(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    tokens = await register_and_sign_in(client)
    # Forged: every use case that moves the version also ends the sessions.
    await forge_user(session, "ada@example.com", token_version=1)

    assert await status_with(client, tokens["access_token"]) == 401
