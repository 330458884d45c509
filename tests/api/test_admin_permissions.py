"""/admin/permissions: CRUD, and the built-in permissions that stay. Who may call each route:
test_admin_permission_matrix."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services.common.authorization import BUILTIN_PERMISSIONS
from tests.support.admins import admin_headers, audit_events
from tests.support.flows import assert_problem

Sessions = async_sessionmaker[AsyncSession]
Headers = dict[str, str]


@pytest.fixture
async def root(client: httpx.AsyncClient, session_factory: Sessions) -> Headers:
    """A superuser's bearer header."""
    return await admin_headers(client, session_factory, superuser=True)


async def create_permission(
    client: httpx.AsyncClient, headers: Headers, codename: str, description: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/admin/permissions",
        json={"codename": codename, "description": description},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- CRUD --------------------------------------------------------------------------------


async def test_create_and_read_permission(client: httpx.AsyncClient, root: Headers) -> None:
    created = await create_permission(client, root, "reports:export", "Export reports.")

    response = await client.get("/admin/permissions/reports:export", headers=root)

    assert set(created) == {"id", "codename", "description", "created_at"}
    assert created["codename"] == "reports:export"
    assert created["description"] == "Export reports."
    assert response.json() == created


async def test_list_permissions_starts_with_the_builtins(
    client: httpx.AsyncClient, root: Headers
) -> None:
    await create_permission(client, root, "reports:export")

    page = (await client.get("/admin/permissions", headers=root)).json()

    codenames = [permission["codename"] for permission in page["items"]]
    assert set(codenames[: len(BUILTIN_PERMISSIONS)]) == BUILTIN_PERMISSIONS
    assert codenames[-1] == "reports:export"
    assert page["next_cursor"] is None


async def test_list_permissions_pages_through_every_permission_once(
    client: httpx.AsyncClient, root: Headers
) -> None:
    created = [f"reports:action-{number}" for number in range(3)]
    for codename in created:
        await create_permission(client, root, codename)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/admin/permissions", params=params, headers=root)).json()
        assert len(page["items"]) <= 4
        seen += [permission["codename"] for permission in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted([*BUILTIN_PERMISSIONS, *created])


async def test_update_permission_description(client: httpx.AsyncClient, root: Headers) -> None:
    await create_permission(client, root, "reports:export", "Old.")

    described = await client.patch(
        "/admin/permissions/reports:export", json={"description": "New."}, headers=root
    )
    cleared = await client.patch(
        "/admin/permissions/reports:export", json={"description": None}, headers=root
    )

    assert described.status_code == 200
    assert described.json()["description"] == "New."
    assert cleared.json()["description"] is None


async def test_builtin_permission_description_can_change(
    client: httpx.AsyncClient, root: Headers
) -> None:
    response = await client.patch(
        "/admin/permissions/users:read", json={"description": "Read accounts."}, headers=root
    )

    assert response.status_code == 200
    assert response.json()["description"] == "Read accounts."


async def test_codenames_cannot_be_renamed(client: httpx.AsyncClient, root: Headers) -> None:
    await create_permission(client, root, "reports:export")

    response = await client.patch(
        "/admin/permissions/reports:export", json={"codename": "reports:dump"}, headers=root
    )

    assert_problem(response, 422)
    assert (await client.get("/admin/permissions/reports:export", headers=root)).status_code == 200


async def test_delete_permission_held_by_a_role(
    client: httpx.AsyncClient, session_factory: Sessions, root: Headers
) -> None:
    await create_permission(client, root, "reports:export")
    await client.post(
        "/admin/roles",
        json={"name": "reporters", "permissions": ["reports:export", "users:read"]},
        headers=root,
    )

    response = await client.delete("/admin/permissions/reports:export", headers=root)

    assert response.status_code == 204
    assert (await client.get("/admin/permissions/reports:export", headers=root)).status_code == 404
    role = (await client.get("/admin/roles/reporters", headers=root)).json()
    assert role["permissions"] == ["users:read"]
    [event] = await audit_events(session_factory, "permission.deleted")
    assert event.details["roles"] == 1


async def test_a_recreated_permission_is_not_held_by_roles_of_the_deleted_one(
    client: httpx.AsyncClient, root: Headers
) -> None:
    await create_permission(client, root, "reports:export")
    await client.post(
        "/admin/roles", json={"name": "reporters", "permissions": ["reports:export"]}, headers=root
    )
    await client.delete("/admin/permissions/reports:export", headers=root)

    await create_permission(client, root, "reports:export")

    role = (await client.get("/admin/roles/reporters", headers=root)).json()
    assert role["permissions"] == []


# --- not found, conflicts, invalid bodies, built-ins -------------------------------------


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"description": "Boo."}), ("DELETE", None)]
)
async def test_unknown_permission_is_404(
    client: httpx.AsyncClient, root: Headers, method: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(
        method, "/admin/permissions/ghosts:haunt", json=body, headers=root
    )

    assert_problem(response, 404)


async def test_duplicate_codename_is_409(client: httpx.AsyncClient, root: Headers) -> None:
    response = await client.post(
        "/admin/permissions", json={"codename": "users:read"}, headers=root
    )

    assert_problem(response, 409)


async def test_concurrent_creates_of_one_codename_give_one_201_and_one_409(
    client: httpx.AsyncClient, root: Headers
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/admin/permissions", json={"codename": "reports:run"}, headers=root)
            for _ in range(2)
        )
    )

    assert sorted(response.status_code for response in responses) == [201, 409]
    assert (await client.get("/admin/permissions/reports:run", headers=root)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"codename": "reports"},
        {"codename": "Reports:export"},
        {"codename": "reports:"},
        {"codename": ":export"},
        {"codename": "reports:export now"},
        {"codename": "reports:" + "x" * 100},
        {"codename": "reports:export", "description": "d" * 1001},
        {"codename": "reports:export", "roles": ["admin"]},
        {},
    ],
)
async def test_invalid_permission_bodies_are_422(
    client: httpx.AsyncClient, root: Headers, body: dict[str, Any]
) -> None:
    response = await client.post("/admin/permissions", json=body, headers=root)

    assert assert_problem(response, 422)["errors"]


@pytest.mark.parametrize("codename", sorted(BUILTIN_PERMISSIONS))
async def test_builtin_permissions_cannot_be_deleted(
    client: httpx.AsyncClient, root: Headers, codename: str
) -> None:
    response = await client.delete(f"/admin/permissions/{codename}", headers=root)

    assert_problem(response, 409)
    assert (await client.get(f"/admin/permissions/{codename}", headers=root)).status_code == 200
    admin = (await client.get("/admin/roles/admin", headers=root)).json()
    assert codename in admin["permissions"]


# --- audit trail -------------------------------------------------------------------------


async def test_permission_changes_are_audited_with_the_actor(
    client: httpx.AsyncClient, session_factory: Sessions, root: Headers
) -> None:
    actor = (await client.get("/users/me", headers=root)).json()["id"]

    await create_permission(client, root, "reports:export")
    await client.patch(
        "/admin/permissions/reports:export", json={"description": "Export."}, headers=root
    )
    await client.delete("/admin/permissions/reports:export", headers=root)

    [created] = await audit_events(session_factory, "permission.created")
    [updated] = await audit_events(session_factory, "permission.updated")
    [deleted] = await audit_events(session_factory, "permission.deleted")
    for event in (created, updated, deleted):
        assert str(event.actor_id) == actor
        assert event.details["codename"] == "reports:export"
    assert updated.details["fields"] == ["description"]
    assert deleted.details["roles"] == 0
