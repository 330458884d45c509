"""POST /auth/token with grant_type=password, and the access tokens it issues."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.repositories import AuditEventRepository, UserRepository
from tests.support.admins import grant, update_user
from tests.support.flows import PASSWORD, bearer, password_grant, register, sign_in
from tests.support.state import forge_user

pytestmark = pytest.mark.usefixtures("app")


async def test_sign_in_with_email_returns_a_token_pair(client: httpx.AsyncClient) -> None:
    await register(client)

    response = await password_grant(client, "ada@example.com")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url
    assert body["access_token"].count(".") == 2


async def test_sign_in_with_username_ignores_case(client: httpx.AsyncClient) -> None:
    await register(client, username="ada")

    response = await password_grant(client, "ADA")

    assert response.status_code == 200


async def test_access_token_is_an_rfc9068_jwt(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await register(client)
    tokens = await sign_in(client)

    header = jwt.get_unverified_header(tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    jwks = (await client.get("/.well-known/jwks.json")).json()

    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    assert claims["iss"] == settings.issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["sub"] == user["id"]
    assert claims["client_id"] == settings.first_party_client_id
    assert claims["exp"] - claims["iat"] == 900
    assert "roles" not in claims  # none held: left out, not [] (RFC 9068 validators refuse [])
    assert "scope" not in claims
    assert claims["ver"] == 0
    uuid.UUID(claims["sid"])
    assert claims["jti"]


async def test_access_token_opens_users_me(client: httpx.AsyncClient) -> None:
    await register(client)
    tokens = await sign_in(client)

    response = await client.get("/users/me", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


async def test_unknown_user_wrong_password_and_inactive_user_look_the_same(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await register(client, "ada@example.com")
    await register(client, "off@example.com")
    await update_user(session, "off@example.com", is_active=False)

    responses = [
        await password_grant(client, "nobody@example.com"),
        await password_grant(client, "ada@example.com", "wrong password but long"),
        await password_grant(client, "off@example.com"),
    ]

    assert {r.status_code for r in responses} == {400}
    assert {r.text for r in responses} == {responses[0].text}
    assert responses[0].json()["error"] == "invalid_grant"
    assert responses[0].headers["cache-control"] == "no-store"


async def test_failed_and_successful_sign_ins_are_audited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await register(client)
    await password_grant(client, "ada@example.com", "wrong password but long")
    await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        headers={"User-Agent": "pytest-browser/1.0"},
    )

    events = AuditEventRepository(session)
    failed = await events.list_by(type="login.failed")
    succeeded = await events.list_by(type="login.succeeded")
    assert [str(e.user_id) for e in failed] == [user["id"]]
    assert [str(e.user_id) for e in succeeded] == [user["id"]]
    assert succeeded[0].user_agent == "pytest-browser/1.0"
    assert succeeded[0].ip == "127.0.0.1"
    assert "wrong password" not in str(failed[0].details)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "ada@example.com"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "implicit", "code": "x"}, "unsupported_grant_type"),
    ],
)
async def test_malformed_token_requests_get_rfc6749_errors(
    client: httpx.AsyncClient, data: dict[str, str], error: str
) -> None:
    response = await client.post("/auth/token", data=data)

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]


async def test_json_body_is_not_a_token_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token", json={"grant_type": "password", "username": "a", "password": "b"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_oversized_password_is_refused_without_hashing(client: httpx.AsyncClient) -> None:
    await register(client)

    response = await password_grant(client, "ada@example.com", "x" * 5000)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_requested_scope_is_narrowed_to_what_the_user_may_have(
    client: httpx.AsyncClient,
) -> None:
    await register(client)

    response = await password_grant(client, "ada@example.com", scope="openid users:write")

    body = response.json()
    assert body["scope"] == "openid"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "openid"


async def test_token_carries_roles_and_the_requested_permissions_the_roles_grant(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await register(client)
    await grant(session, "ada@example.com", roles=["admin"])

    response = await password_grant(
        client, "ada@example.com", scope="openid users:read audit:read billing:write"
    )

    body = response.json()
    assert body["scope"] == "audit:read openid users:read"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["scope"] == body["scope"]
    assert claims["roles"] == ["admin"]


async def test_bcrypt_hash_is_accepted_and_upgraded_to_argon2id(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    import bcrypt

    await register(client)
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    # Forged: an imported hash; no use case stores a bcrypt hash.
    await forge_user(session, "ada@example.com", hashed_password=legacy)

    assert (await password_grant(client, "ada@example.com")).status_code == 200

    session.expire_all()
    upgraded = await UserRepository(session).get_by_email("ada@example.com")
    assert upgraded is not None
    assert upgraded.hashed_password is not None
    assert upgraded.hashed_password.startswith("$argon2id$")
    assert (await password_grant(client, "ada@example.com")).status_code == 200


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Costly enough that a skipped hash would show: ~10 ms per verify.
    return {"argon2_memory_cost_kib": 8192, "argon2_time_cost": 2}


async def test_unknown_user_takes_as_long_as_a_wrong_password(client: httpx.AsyncClient) -> None:
    await register(client)

    async def fastest_seconds(username: str) -> float:
        # The fastest of several tries: other tests share the CPU, and noise only adds time.
        samples = []
        for _ in range(9):
            started = time.perf_counter()
            response = await password_grant(client, username, "wrong password but long")
            samples.append(time.perf_counter() - started)
            assert response.status_code == 400
        return min(samples)

    known = await fastest_seconds("ada@example.com")
    unknown = await fastest_seconds("nobody@example.com")

    # Skipping the hash for unknown users would make them 10x+ faster; parity is within noise.
    assert 1 / 3 < unknown / known < 3
