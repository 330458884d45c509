"""GET/PATCH /users/me, password change, and the user's own sessions."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import AuditEventRepository
from tests.support.flows import (
    PASSWORD,
    bearer,
    password_grant,
    refresh,
    register,
    register_and_sign_in,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("app")
NEW_PASSWORD = "an entirely different passphrase"


async def test_read_me(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client, username="ada", full_name="Ada")

    body = (await client.get("/users/me", headers=bearer(tokens["access_token"]))).json()

    assert body["email"] == "ada@example.com"
    assert body["username"] == "ada"
    assert set(body) == {
        "id", "email", "username", "full_name", "is_active", "is_verified", "is_superuser",
        "roles", "created_at",
    }  # fmt: skip


async def test_token_in_query_string_is_ignored(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.get("/users/me", params={"access_token": tokens["access_token"]})

    assert response.status_code == 401


async def test_update_profile_fields(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.patch(
        "/users/me",
        json={"full_name": "Ada Lovelace", "username": "Countess"},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada Lovelace"
    assert response.json()["username"] == "countess"


@pytest.mark.parametrize("field", [{"is_superuser": True}, {"is_verified": True}, {"roles": []}])
async def test_privileged_fields_cannot_be_patched(
    client: httpx.AsyncClient, field: dict[str, object]
) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.patch("/users/me", json=field, headers=bearer(tokens["access_token"]))

    assert response.status_code == 422
    me = (await client.get("/users/me", headers=bearer(tokens["access_token"]))).json()
    assert me["is_superuser"] is False
    assert me["is_verified"] is False


async def test_username_taken_is_409(client: httpx.AsyncClient) -> None:
    await register(client, "bob@example.com", username="bob")
    tokens = await register_and_sign_in(client)

    response = await client.patch(
        "/users/me", json={"username": "bob"}, headers=bearer(tokens["access_token"])
    )

    assert response.status_code == 409


async def test_email_change_needs_the_current_password(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)
    headers = bearer(tokens["access_token"])

    missing = await client.patch("/users/me", json={"email": "new@example.com"}, headers=headers)
    wrong = await client.patch(
        "/users/me",
        json={"email": "new@example.com", "current_password": "not my password at all"},
        headers=headers,
    )

    assert missing.status_code == 400
    assert wrong.status_code == 400
    me = (await client.get("/users/me", headers=headers)).json()
    assert me["email"] == "ada@example.com"


async def test_email_change_makes_the_account_unverified(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.patch(
        "/users/me",
        json={"email": "New@Example.com", "current_password": PASSWORD},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 200
    assert response.json()["email"] == "new@example.com"
    assert response.json()["is_verified"] is False
    assert (await password_grant(client, "new@example.com")).status_code == 200
    assert await AuditEventRepository(session).count(type="email.changed") == 1


async def test_email_change_to_a_taken_address_is_409(client: httpx.AsyncClient) -> None:
    await register(client, "bob@example.com")
    tokens = await register_and_sign_in(client)

    response = await client.patch(
        "/users/me",
        json={"email": "bob@example.com", "current_password": PASSWORD},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 409


async def test_password_change_ends_other_sessions_and_old_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    current = await register_and_sign_in(client)
    other = await sign_in(client)

    response = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(current["access_token"]),
    )

    assert response.status_code == 204
    assert (await password_grant(client, "ada@example.com")).status_code == 400
    assert (await password_grant(client, "ada@example.com", NEW_PASSWORD)).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 400
    # Access tokens issued before the change are retired; the current session refreshes.
    assert (
        await client.get("/users/me", headers=bearer(current["access_token"]))
    ).status_code == 401
    renewed = await refresh(client, current["refresh_token"])
    assert renewed.status_code == 200
    me = await client.get("/users/me", headers=bearer(renewed.json()["access_token"]))
    assert me.status_code == 200
    assert await AuditEventRepository(session).count(type="password.changed") == 1


async def test_password_change_with_wrong_current_password_is_400(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.post(
        "/users/me/password",
        json={"current_password": "this is not my password", "new_password": NEW_PASSWORD},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 400
    assert (await password_grant(client, "ada@example.com")).status_code == 200


async def test_password_change_to_a_weak_password_is_422(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 422
    assert (await password_grant(client, "ada@example.com")).status_code == 200


async def test_list_sessions_marks_the_current_one(client: httpx.AsyncClient) -> None:
    await register_and_sign_in(client)
    current = await sign_in(client)

    response = await client.get("/users/me/sessions", headers=bearer(current["access_token"]))

    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 2
    assert sorted(s["current"] for s in sessions) == [False, True]
    assert all(s["ip"] == "127.0.0.1" for s in sessions)
    assert "refresh_token" not in response.text


async def test_end_one_of_my_sessions(client: httpx.AsyncClient) -> None:
    other = await register_and_sign_in(client)
    current = await sign_in(client)
    headers = bearer(current["access_token"])
    sessions = (await client.get("/users/me/sessions", headers=headers)).json()
    other_id = next(s["id"] for s in sessions if not s["current"])

    response = await client.delete(f"/users/me/sessions/{other_id}", headers=headers)

    assert response.status_code == 204
    assert (await refresh(client, other["refresh_token"])).status_code == 400
    assert len((await client.get("/users/me/sessions", headers=headers)).json()) == 1


async def test_cannot_end_someone_elses_session(client: httpx.AsyncClient) -> None:
    victim = await register_and_sign_in(client, "victim@example.com")
    victim_sessions = (
        await client.get("/users/me/sessions", headers=bearer(victim["access_token"]))
    ).json()
    attacker = await register_and_sign_in(client, "attacker@example.com")

    response = await client.delete(
        f"/users/me/sessions/{victim_sessions[0]['id']}", headers=bearer(attacker["access_token"])
    )

    assert response.status_code == 404
    assert (await refresh(client, victim["refresh_token"])).status_code == 200


async def test_ending_an_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    tokens = await register_and_sign_in(client)

    response = await client.delete(
        "/users/me/sessions/00000000-0000-0000-0000-000000000000",
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 404
