"""Reading the audit trail: newest first, filtered, paginated, for holders of `audit:read`."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent
from app.repositories import AuditEventRepository
from tests.support.admins import admin_headers
from tests.support.flows import password_grant, register, register_and_sign_in


async def events(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[Any]:
    response = await client.get("/admin/audit-events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def test_events_are_filtered_by_user_type_and_actor_newest_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auditor = await admin_headers(client, sessions, "auditor@example.com", superuser=True)
    ada = await register_and_sign_in(client, "ada@example.com")
    assert (await password_grant(client, "ada@example.com", "wrong password!")).status_code == 400
    ada_id = (
        await client.get("/users/me", headers={"Authorization": f"Bearer {ada['access_token']}"})
    ).json()["id"]
    changed = await client.patch(
        f"/admin/users/{ada_id}", json={"full_name": "Ada"}, headers=auditor
    )
    assert changed.status_code == 200

    mine = await events(client, auditor, user_id=ada_id)
    assert [e["type"] for e in mine] == [
        "user.updated",
        "login.failed",
        "login.succeeded",
        "user.registered",
    ]
    assert mine[0]["details"] == {"fields": ["full_name"]}
    assert mine[0]["actor_id"] != ada_id
    assert [e["user_id"] for e in await events(client, auditor, type="login.failed")] == [ada_id]
    by_admin = await events(client, auditor, actor_id=mine[0]["actor_id"])
    assert "user.updated" in [e["type"] for e in by_admin]
    assert await events(client, auditor, type="no.such.type") == []


async def test_pages_walk_back_in_time_without_repeats(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auditor = await admin_headers(
        client, sessions, "auditor@example.com", permissions=["audit:read"]
    )
    for i in range(5):
        await register(client, f"u{i}@example.com")

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"type": "user.registered", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/admin/audit-events", params=params, headers=auditor)).json()
        seen.extend(e["id"] for e in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == len(set(seen)) == 6  # five users and the auditor
    async with sessions() as session:
        stored = [e.id for e in await _all(session)]
    assert seen == [str(i) for i in sorted(stored, reverse=True)]


async def _all(session: AsyncSession) -> list[AuditEvent]:
    return await AuditEventRepository(session).list_by(type="user.registered")


async def test_a_malformed_user_id_filter_is_422(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auditor = await admin_headers(client, sessions, "auditor@example.com", superuser=True)
    response = await client.get("/admin/audit-events", params={"user_id": "x"}, headers=auditor)
    assert response.status_code == 422
