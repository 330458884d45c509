"""Who the audit trail says acted, and what it keeps of a failed sign-in's identifier."""

from __future__ import annotations

import hashlib
import hmac

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent
from app.repositories import AuditEventRepository
from app.runtime import runtime_of
from app.security.audit_hmac import load_audit_key
from tests.support.admins import admin_headers
from tests.support.flows import (
    PASSWORD,
    bearer,
    password_grant,
    refresh,
    register,
    register_and_sign_in,
)


async def recorded(sessions: async_sessionmaker[AsyncSession], type_: str) -> list[AuditEvent]:
    async with sessions() as session:
        return await AuditEventRepository(session).list_by(type=type_)


async def test_a_strangers_failed_sign_in_is_not_recorded_as_the_owners_act(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner = await register(client, "ada@example.com")

    response = await password_grant(client, "ada@example.com", "a guess from elsewhere!")

    assert response.status_code == 400
    [failed] = await recorded(sessions, "login.failed")
    assert str(failed.user_id) == owner["id"]
    assert failed.actor_id is None


async def test_the_failed_identifier_is_a_keyed_hmac_that_no_address_list_reverses(
    app: FastAPI, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for name in ("ada@example.com", "ada@example.com", "bob@example.com"):
        await password_grant(client, name, "wrong password here!")

    failed = await recorded(sessions, "login.failed")
    stored = [event.details["identifier_hmac"] for event in failed]
    # The same name gives the same value (attempts on one account can be grouped)...
    assert stored[0] == stored[1] != stored[2]
    # ...but hashing a list of addresses finds nothing: only the key recomputes it.
    plain = hashlib.sha256(b"ada@example.com").hexdigest()
    assert not any(plain.startswith(value) or value in plain for value in stored)
    assert all("identifier_digest" not in event.details for event in failed)
    key = load_audit_key(runtime_of(app).settings)
    keyed = hmac.new(key, b"ada@example.com", hashlib.sha256).hexdigest()
    assert keyed.startswith(stored[0])


async def test_a_users_own_changes_name_them_as_the_actor(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")
    headers = bearer(tokens["access_token"])
    me = (await client.get("/users/me", headers=headers)).json()["id"]

    assert (await client.patch("/users/me", json={"full_name": "Ada"}, headers=headers)).is_success
    changed = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another horse battery staple"},
        headers=headers,
    )
    assert changed.status_code == 204
    renewed = (await refresh(client, tokens["refresh_token"])).json()["access_token"]
    assert (await client.post("/auth/logout", headers=bearer(renewed))).status_code == 204

    for type_ in ("login.succeeded", "password.changed", "profile.updated", "logout"):
        [event] = await recorded(sessions, type_)
        assert str(event.actor_id) == me, type_
        assert str(event.user_id) == me, type_


async def test_anonymous_callers_are_recorded_without_an_actor(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await register(client, "ada@example.com")

    forgot = await client.post("/auth/password/forgot", json={"email": "ada@example.com"})

    assert forgot.status_code == 202
    for type_ in ("user.registered", "password.reset_requested"):
        [event] = await recorded(sessions, type_)
        assert event.user_id is not None, type_
        assert event.actor_id is None, type_


async def test_an_admins_change_still_names_the_admin_not_the_user(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_headers(client, sessions, "root@example.com", superuser=True)
    root_id = (await client.get("/users/me", headers=admin)).json()["id"]
    ada = await register(client, "ada@example.com")

    response = await client.patch(
        f"/admin/users/{ada['id']}", json={"full_name": "Ada"}, headers=admin
    )

    assert response.status_code == 200
    [event] = await recorded(sessions, "user.updated")
    assert (str(event.user_id), str(event.actor_id)) == (ada["id"], root_id)
