"""User administration over HTTP: who may call what, what each change does, and the guards
against escalation and against locking everybody out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.repositories import AuditEventRepository, UserRepository
from app.runtime import runtime_of
from tests.support.admins import admin_headers, grant, take_back, update_user
from tests.support.flows import (
    PASSWORD,
    bearer,
    refresh,
    register,
    register_and_sign_in,
    sign_in,
    user_id,
)

NEW_PASSWORD = "a completely different passphrase"


async def superuser(client: httpx.AsyncClient, sessions: Any) -> dict[str, str]:
    return await admin_headers(client, sessions, "root@example.com", superuser=True)


async def audit_types(sessions: Any, subject: str) -> list[str]:
    async with sessions() as session:
        events = await AuditEventRepository(session).list_by(user_id=uuid.UUID(subject))
    return [e.type for e in events]


# --- who may call what ---------------------------------------------------------------------

ADMIN_LISTS = ("/admin/users", "/admin/roles", "/admin/permissions", "/admin/audit-events")


async def test_superusers_pass_every_check_without_any_role(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    for path in ADMIN_LISTS:
        response = await client.get(path, headers=root)
        assert response.status_code == 200, (path, response.text)


async def test_the_seeded_admin_role_opens_every_admin_route(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    admin = await admin_headers(client, sessions, "admin@example.com", roles=["admin"])
    for path in ADMIN_LISTS:
        response = await client.get(path, headers=admin)
        assert response.status_code == 200, (path, response.text)


async def test_a_revoked_permission_stops_working_with_the_same_token(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    reader = await admin_headers(client, sessions, "reader@example.com", permissions=["users:read"])
    assert (await client.get("/admin/users", headers=reader)).status_code == 200

    async with sessions() as session:
        await take_back(session, "reader@example.com")  # the only role they held, deleted

    assert (await client.get("/admin/users", headers=reader)).status_code == 403


# --- listing -------------------------------------------------------------------------------


async def test_list_filters_by_search_text_flags_and_role(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    await register(client, "ada@example.com", username="ada", full_name="Ada Lovelace")
    await register(client, "grace@example.com", full_name="Grace Hopper")
    await register(client, "linus@example.org", username="torvalds")
    async with sessions() as session:
        await grant(session, "grace@example.com", roles=["admin"])
        await update_user(session, "linus@example.org", is_active=False, is_verified=True)

    async def emails(**params: Any) -> list[str]:
        response = await client.get("/admin/users", params=params, headers=root)
        assert response.status_code == 200, response.text
        return [item["email"] for item in response.json()["items"]]

    assert await emails(q="LOVELACE") == ["ada@example.com"]
    assert await emails(q="torv") == ["linus@example.org"]
    assert await emails(q="example.org") == ["linus@example.org"]
    assert await emails(q="%") == []  # wildcards are matched literally
    assert await emails(is_active=False) == ["linus@example.org"]
    assert await emails(is_verified=True) == ["linus@example.org"]
    assert await emails(role="admin") == ["grace@example.com"]
    assert await emails(role="admin", q="ada") == []
    assert await emails(role="no-such-role") == []


async def test_pages_cover_every_user_once_while_users_sign_up(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    existing = [(await register(client, f"user{i}@example.com"))["id"] for i in range(7)]

    seen: list[str] = []
    cursor: str | None = None
    late: list[str] = []
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page, new = await asyncio.gather(
            client.get("/admin/users", params=params, headers=root),
            register(client, f"late{len(late)}@example.com"),
        )
        late.append(new["id"])
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == len(set(seen)), "a user appeared on two pages"
    assert set(existing) <= set(seen), "a user that existed all along was skipped"
    assert seen == sorted(seen, key=uuid.UUID)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"cursor": "x" * 65}, {"is_active": "maybe"}]
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, sessions: Any, params: dict[str, Any]
) -> None:
    root = await superuser(client, sessions)
    response = await client.get("/admin/users", params=params, headers=root)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_forged_cursor_is_400(client: httpx.AsyncClient, sessions: Any) -> None:
    root = await superuser(client, sessions)
    response = await client.get("/admin/users", params={"cursor": "!!"}, headers=root)
    assert response.status_code == 400


# --- create, read, change, delete ----------------------------------------------------------


async def test_create_user_with_roles_who_can_then_sign_in(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    response = await client.post(
        "/admin/users",
        json={
            "email": "New@Example.com",
            "password": PASSWORD,
            "full_name": "New Person",
            "is_verified": True,
            "roles": ["admin"],
        },
        headers=root,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "new@example.com"
    assert body["roles"] == ["admin"]
    assert body["is_verified"] is True
    assert "hashed_password" not in body
    assert "password" not in body
    tokens = await sign_in(client, "new@example.com")
    assert (await client.get("/admin/users", headers=bearer(tokens["access_token"]))).is_success
    async with sessions() as session:
        created = await AuditEventRepository(session).get_one_by(type="user.created")
    assert created is not None
    assert str(created.user_id) == body["id"]
    assert str(created.actor_id) == await user_id(client, root)


async def test_create_refuses_duplicates_unknown_roles_and_weak_passwords(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    await register(client, "taken@example.com", username="taken")

    async def create(**body: Any) -> httpx.Response:
        return await client.post("/admin/users", json=body, headers=root)

    assert (await create(email="TAKEN@example.com")).status_code == 409
    assert (await create(email="x@example.com", username="taken")).status_code == 409
    unknown = await create(email="x@example.com", roles=["admin", "wizard"])
    assert unknown.status_code == 422
    assert "wizard" in unknown.json()["detail"]
    assert (await create(email="x@example.com", password="password")).status_code == 422
    assert (await create(email="x@example.com", hashed_password="x")).status_code == 422
    assert (await create(email="not-an-email")).status_code == 422
    listing = await client.get("/admin/users", params={"q": "x@"}, headers=root)
    assert listing.json()["items"] == []


async def test_unknown_user_is_404_and_a_malformed_id_422(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    missing = f"/admin/users/{uuid.uuid4()}"
    assert (await client.get(missing, headers=root)).status_code == 404
    assert (await client.patch(missing, json={"full_name": "X"}, headers=root)).status_code == 404
    assert (await client.delete(missing, headers=root)).status_code == 404
    assert (
        await client.put(missing + "/roles", json={"roles": []}, headers=root)
    ).status_code == 404
    assert (await client.get("/admin/users/not-a-uuid", headers=root)).status_code == 422


async def test_deactivation_ends_sessions_and_tokens_at_once(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    tokens = await register_and_sign_in(client, "ada@example.com")
    ada = await user_id(client, bearer(tokens["access_token"]))

    response = await client.patch(f"/admin/users/{ada}", json={"is_active": False}, headers=root)

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    assert (
        await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        )
    ).status_code == 400
    assert "user.deactivated" in await audit_types(sessions, ada)

    back = await client.patch(f"/admin/users/{ada}", json={"is_active": True}, headers=root)
    assert back.json()["is_active"] is True
    await sign_in(client, "ada@example.com")


async def test_admin_sets_a_password_which_ends_the_users_sessions(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    tokens = await register_and_sign_in(client, "ada@example.com")
    ada = await user_id(client, bearer(tokens["access_token"]))

    weak = await client.patch(
        f"/admin/users/{ada}", json={"password": "ada@example.com"}, headers=root
    )
    assert weak.status_code == 422
    response = await client.patch(
        f"/admin/users/{ada}", json={"password": NEW_PASSWORD}, headers=root
    )

    assert response.status_code == 200
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    await sign_in(client, "ada@example.com", NEW_PASSWORD)
    async with sessions() as session:
        events = await AuditEventRepository(session).list_by(user_id=uuid.UUID(ada))
    updated = [e for e in events if e.type == "user.updated"]
    assert updated[-1].details["fields"] == ["password"]
    assert NEW_PASSWORD not in str([e.details for e in events])


async def test_admin_email_change_makes_the_account_unverified_and_refuses_taken_ones(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    ada = (await register(client, "ada@example.com"))["id"]
    await register(client, "grace@example.com")
    await client.patch(f"/admin/users/{ada}", json={"is_verified": True}, headers=root)

    taken = await client.patch(
        f"/admin/users/{ada}", json={"email": "grace@example.com"}, headers=root
    )
    assert taken.status_code == 409
    moved = await client.patch(
        f"/admin/users/{ada}", json={"email": "Ada@New.example"}, headers=root
    )
    assert moved.status_code == 200
    assert moved.json()["email"] == "ada@new.example"
    assert moved.json()["is_verified"] is False
    privileged = await client.patch(f"/admin/users/{ada}", json={"token_version": 9}, headers=root)
    assert privileged.status_code == 422


async def test_delete_removes_the_account(client: httpx.AsyncClient, sessions: Any) -> None:
    root = await superuser(client, sessions)
    tokens = await register_and_sign_in(client, "ada@example.com")
    ada = await user_id(client, bearer(tokens["access_token"]))

    assert (await client.delete(f"/admin/users/{ada}", headers=root)).status_code == 204
    assert (await client.get(f"/admin/users/{ada}", headers=root)).status_code == 404
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    assert await audit_types(sessions, ada) == [
        "user.registered",
        "login.succeeded",
        "user.deleted",
    ]


async def test_ending_a_users_sessions_revokes_their_tokens(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    first = await register_and_sign_in(client, "ada@example.com")
    second = await sign_in(client, "ada@example.com")
    ada = await user_id(client, bearer(first["access_token"]))

    assert (await client.delete(f"/admin/users/{ada}/sessions", headers=root)).status_code == 204

    for tokens in (first, second):
        assert (
            await client.get("/users/me", headers=bearer(tokens["access_token"]))
        ).status_code == 401
        assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    await sign_in(client, "ada@example.com")  # the account itself is fine


# --- roles ---------------------------------------------------------------------------------


async def test_replacing_roles_changes_the_next_tokens_and_retires_the_old_ones(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    tokens = await register_and_sign_in(client, "ada@example.com")
    ada = await user_id(client, bearer(tokens["access_token"]))

    granted = await client.put(f"/admin/users/{ada}/roles", json={"roles": ["admin"]}, headers=root)
    assert granted.status_code == 200
    assert granted.json()["roles"] == ["admin"]
    # Adding a role leaves existing tokens alone; the next refresh carries it.
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200
    tokens = (await refresh(client, tokens["refresh_token"])).json()
    assert (await client.get("/users/me", headers=bearer(tokens["access_token"]))).json()[
        "roles"
    ] == ["admin"]

    removed = await client.put(f"/admin/users/{ada}/roles", json={"roles": []}, headers=root)
    assert removed.json()["roles"] == []
    # Removing one retires the tokens that claim it; the session refreshes into new ones.
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    renewed = await refresh(client, tokens["refresh_token"])
    assert renewed.status_code == 200
    assert "admin" not in str(renewed.json())  # not in the scope, nor in the claims' roles
    types = await audit_types(sessions, ada)
    assert types.count("user.roles_changed") == 2


async def test_nobody_grants_a_role_with_permissions_they_lack(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    manager = await admin_headers(
        client, sessions, "manager@example.com", permissions=["users:write"]
    )
    ada = (await register(client, "ada@example.com"))["id"]

    escalation = await client.put(
        f"/admin/users/{ada}/roles", json={"roles": ["admin"]}, headers=manager
    )
    assert escalation.status_code == 403
    assert "roles:write" in escalation.json()["detail"]
    self_escalation = await client.put(
        f"/admin/users/{await user_id(client, manager)}/roles",
        json={"roles": ["admin"]},
        headers=manager,
    )
    assert self_escalation.status_code == 403
    made_super = await client.patch(
        f"/admin/users/{ada}", json={"is_superuser": True}, headers=manager
    )
    assert made_super.status_code == 403
    created_super = await client.post(
        "/admin/users", json={"email": "x@example.com", "is_superuser": True}, headers=manager
    )
    assert created_super.status_code == 403
    root = await superuser(client, sessions)
    assert (await client.get(f"/admin/users/{ada}", headers=root)).json()["roles"] == []
    assert (await client.get("/admin/users", params={"q": "x@"}, headers=root)).json()[
        "items"
    ] == []


async def test_nobody_manages_an_account_stronger_than_their_own(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    manager = await admin_headers(
        client, sessions, "manager@example.com", permissions=["users:write"]
    )
    root = await superuser(client, sessions)
    admin = await admin_headers(client, sessions, "admin@example.com", roles=["admin"])
    peer = await admin_headers(client, sessions, "peer@example.com", permissions=["users:write"])

    for target, headers in ((root, manager), (admin, manager)):
        target_id = await user_id(client, target)
        for method, suffix, body in (
            ("PATCH", "", {"email": "mine@example.com"}),
            ("DELETE", "/sessions", None),
            ("PUT", "/roles", {"roles": []}),
            ("DELETE", "", None),
        ):
            response = await client.request(
                method, f"/admin/users/{target_id}{suffix}", json=body, headers=headers
            )
            assert response.status_code == 403, (method, suffix, response.text)
    bulk = await client.post(
        "/admin/users/bulk",
        json={"ids": [await user_id(client, admin)], "action": "deactivate"},
        headers=manager,
    )
    assert bulk.status_code == 403
    # An equal may be managed.
    peer_id = await user_id(client, peer)
    assert (
        await client.patch(f"/admin/users/{peer_id}", json={"full_name": "Peer"}, headers=manager)
    ).status_code == 200


# --- bulk ----------------------------------------------------------------------------------


@pytest.fixture
def statements(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the test runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()).upper())

    sync_engine = runtime_of(app).engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(sync_engine, "before_cursor_execute", record)


async def test_bulk_deactivate_changes_many_users_in_one_statement(
    client: httpx.AsyncClient, sessions: Any, statements: list[str]
) -> None:
    root = await superuser(client, sessions)
    signed_in = [await register_and_sign_in(client, f"u{i}@example.com") for i in range(5)]
    ids = [await user_id(client, bearer(t["access_token"])) for t in signed_in]
    statements.clear()

    response = await client.post(
        "/admin/users/bulk",
        json={"ids": [*ids[:3], str(uuid.uuid4())], "action": "deactivate"},
        headers=root,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"affected": 3}
    assert len([s for s in statements if s.startswith("UPDATE USERS SET IS_ACTIVE")]) == 1
    for tokens, stopped in zip(signed_in, [True] * 3 + [False] * 2, strict=True):
        status = (await client.get("/users/me", headers=bearer(tokens["access_token"]))).status_code
        assert status == (401 if stopped else 200)
    again = await client.post(
        "/admin/users/bulk", json={"ids": ids, "action": "deactivate"}, headers=root
    )
    assert again.json() == {"affected": 2}
    assert (
        await client.post(
            "/admin/users/bulk", json={"ids": ids, "action": "activate"}, headers=root
        )
    ).json() == {"affected": 5}
    async with sessions() as session:
        events = await AuditEventRepository(session).list_by(type="user.deactivated")
    assert sorted(str(e.user_id) for e in events) == sorted(ids)


async def test_bulk_delete_in_one_statement(
    client: httpx.AsyncClient, sessions: Any, statements: list[str]
) -> None:
    root = await superuser(client, sessions)
    ids = [(await register(client, f"u{i}@example.com"))["id"] for i in range(4)]
    statements.clear()

    response = await client.post(
        "/admin/users/bulk", json={"ids": ids[:3], "action": "delete"}, headers=root
    )

    assert response.json() == {"affected": 3}
    assert len([s for s in statements if s.startswith("DELETE FROM USERS")]) == 1
    remaining = (await client.get("/admin/users", headers=root)).json()["items"]
    assert sorted(u["email"] for u in remaining) == ["root@example.com", "u3@example.com"]


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [], "action": "delete"},
        {"ids": ["not-a-uuid"], "action": "delete"},
        {"ids": [str(uuid.uuid4())], "action": "explode"},
        {"ids": [str(uuid.uuid4()) for _ in range(1001)], "action": "delete"},
    ],
)
async def test_bad_bulk_requests_are_422(
    client: httpx.AsyncClient, sessions: Any, body: dict[str, Any]
) -> None:
    root = await superuser(client, sessions)
    response = await client.post("/admin/users/bulk", json=body, headers=root)
    assert response.status_code == 422


# --- the last superuser --------------------------------------------------------------------


async def test_the_last_superuser_cannot_demote_deactivate_or_delete_themselves(
    client: httpx.AsyncClient, sessions: Any
) -> None:
    root = await superuser(client, sessions)
    me = await user_id(client, root)

    for method, url, body in (
        ("PATCH", f"/admin/users/{me}", {"is_superuser": False}),
        ("PATCH", f"/admin/users/{me}", {"is_active": False}),
        ("DELETE", f"/admin/users/{me}", None),
        ("POST", "/admin/users/bulk", {"ids": [me], "action": "deactivate"}),
        ("POST", "/admin/users/bulk", {"ids": [me], "action": "delete"}),
    ):
        response = await client.request(method, url, json=body, headers=root)
        assert response.status_code == 409, (method, url, response.text)
        assert "superuser" in response.json()["detail"]
    assert (await client.get(f"/admin/users/{me}", headers=root)).json()["is_superuser"] is True

    # With a second superuser the same change is fine.
    other = (await register(client, "second@example.com"))["id"]
    promoted = await client.patch(
        f"/admin/users/{other}", json={"is_superuser": True}, headers=root
    )
    assert promoted.json()["is_superuser"] is True
    demoted = await client.patch(f"/admin/users/{me}", json={"is_superuser": False}, headers=root)
    assert demoted.status_code == 200
    assert "user.superuser_revoked" in await audit_types(sessions, me)


async def test_two_superusers_demoting_each_other_at_once_leave_one(
    client: httpx.AsyncClient, sessions: Any, backend: str
) -> None:
    first = await superuser(client, sessions)
    second = await admin_headers(client, sessions, "second@example.com", superuser=True)
    first_id, second_id = await user_id(client, first), await user_id(client, second)

    responses = await asyncio.gather(
        client.patch(f"/admin/users/{second_id}", json={"is_superuser": False}, headers=first),
        client.patch(f"/admin/users/{first_id}", json={"is_superuser": False}, headers=second),
    )

    assert sorted(r.status_code for r in responses) in ([200, 403], [200, 409]), [
        r.text for r in responses
    ]
    async with sessions() as session:
        assert len(await UserRepository(session).list_by(is_superuser=True)) == 1
