"""POST /auth/register."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import AuditEventRepository, UserRepository
from tests.support.flows import PASSWORD, register

pytestmark = pytest.mark.usefixtures("app")


async def test_register_creates_an_unverified_user(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={
            "email": "Ada@Example.com",
            "password": PASSWORD,
            "username": "Ada",
            "full_name": "Ada L",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["username"] == "ada"
    assert body["full_name"] == "Ada L"
    assert body["is_active"] is True
    assert body["is_verified"] is False
    assert body["is_superuser"] is False
    assert body["roles"] == []
    assert "password" not in response.text
    assert "hashed_password" not in response.text


async def test_password_is_stored_as_an_argon2id_hash(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await register(client)

    user = await UserRepository(session).get_by_email("ada@example.com")
    assert user is not None
    assert user.hashed_password is not None
    assert user.hashed_password.startswith("$argon2id$")
    assert PASSWORD not in user.hashed_password


async def test_duplicate_email_in_any_case_is_409(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    response = await client.post(
        "/auth/register", json={"email": "ADA@example.COM", "password": PASSWORD}
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "email" in response.json()["detail"]


async def test_duplicate_username_is_409(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com", username="ada")

    response = await client.post(
        "/auth/register", json={"email": "bob@example.com", "password": PASSWORD, "username": "ADA"}
    )

    assert response.status_code == 409
    assert "username" in response.json()["detail"]


@pytest.mark.parametrize(
    "field", [{"is_superuser": True}, {"is_verified": True}, {"roles": ["admin"]}, {"id": "x"}]
)
async def test_privileged_or_unknown_fields_are_refused_and_nothing_is_created(
    client: httpx.AsyncClient, session: AsyncSession, field: dict[str, object]
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD, **field}
    )

    assert response.status_code == 422
    assert await UserRepository(session).count() == 0


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass 14c", "at least 15"),
        ("1q2w3e4r5t6y7u8i9o0p", "common"),
        ("ada@example.com is me", "email"),
    ],
)
async def test_weak_passwords_are_422_with_the_reason(
    client: httpx.AsyncClient, session: AsyncSession, password: str, reason: str
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": password}
    )

    assert response.status_code == 422
    assert reason in response.text
    assert await UserRepository(session).count() == 0


@pytest.mark.parametrize("email", ["not-an-email", "ada@", "@example.com", ""])
async def test_bad_email_is_422(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 422


async def test_username_with_at_sign_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={"email": "ada@example.com", "password": PASSWORD, "username": "ada@home"},
    )
    assert response.status_code == 422


async def test_concurrent_duplicate_registrations_create_exactly_one_user(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    body = {"email": "race@example.com", "password": PASSWORD}

    responses = await asyncio.gather(*(client.post("/auth/register", json=body) for _ in range(6)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409]
    assert await UserRepository(session).count() == 1


async def test_registration_is_audited(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await register(client)

    events = await AuditEventRepository(session).list_by(type="user.registered")
    assert [str(e.user_id) for e in events] == [user["id"]]
    assert events[0].ip == "127.0.0.1"


@pytest.mark.parametrize("length", [1025, 5000])
async def test_oversized_password_is_422_and_nothing_is_created(
    client: httpx.AsyncClient, session: AsyncSession, length: int
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": "x" * length}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert await UserRepository(session).count() == 0
