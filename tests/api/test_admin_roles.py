"""/admin/roles: CRUD, permissions of a role, and the rules that keep administration from
becoming a way up. Who may call each route: test_admin_permission_matrix."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.admins import admin_headers, audit_events
from tests.support.flows import assert_problem, user_id

Sessions = async_sessionmaker[AsyncSession]
Headers = dict[str, str]


@pytest.fixture
async def root(client: httpx.AsyncClient, session_factory: Sessions) -> Headers:
    """A superuser's bearer header."""
    return await admin_headers(client, session_factory, superuser=True)


async def create_role(
    client: httpx.AsyncClient, headers: Headers, name: str, permissions: Sequence[str] = ()
) -> dict[str, Any]:
    response = await client.post(
        "/admin/roles", json={"name": name, "permissions": list(permissions)}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def role_permissions(client: httpx.AsyncClient, headers: Headers, name: str) -> list[str]:
    response = await client.get(f"/admin/roles/{name}", headers=headers)
    assert response.status_code == 200, response.text
    codenames: list[str] = response.json()["permissions"]
    return codenames


# --- CRUD --------------------------------------------------------------------------------


async def test_create_role_with_permissions(client: httpx.AsyncClient, root: Headers) -> None:
    response = await client.post(
        "/admin/roles",
        json={
            "name": "support",
            "description": "First-line support.",
            "permissions": ["users:write", "users:read", "users:read"],
        },
        headers=root,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "name", "description", "permissions", "created_at"}
    assert body["name"] == "support"
    assert body["description"] == "First-line support."
    assert body["permissions"] == ["users:read", "users:write"]
    assert (await client.get("/admin/roles/support", headers=root)).json() == body


async def test_list_roles_includes_permissions(client: httpx.AsyncClient, root: Headers) -> None:
    await create_role(client, root, "auditors", ["audit:read"])

    response = await client.get("/admin/roles", headers=root)

    assert response.status_code == 200
    roles = {role["name"]: role["permissions"] for role in response.json()["items"]}
    assert roles["auditors"] == ["audit:read"]
    assert "roles:write" in roles["admin"]
    assert response.json()["next_cursor"] is None


async def test_list_roles_pages_through_every_role_once(
    client: httpx.AsyncClient, root: Headers
) -> None:
    created = [f"role-{number}" for number in range(5)]
    for name in created:
        await create_role(client, root, name)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/admin/roles", params=params, headers=root)).json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [role["name"] for role in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(["admin", *created])
    assert pages == 3


async def test_forged_cursor_is_400(client: httpx.AsyncClient, root: Headers) -> None:
    response = await client.get("/admin/roles", params={"cursor": "not-a-cursor!"}, headers=root)

    assert_problem(response, 400)


async def test_rename_and_describe_role(client: httpx.AsyncClient, root: Headers) -> None:
    await create_role(client, root, "editors", ["users:read"])

    response = await client.patch(
        "/admin/roles/editors",
        json={"name": "writers", "description": "They write."},
        headers=root,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "writers"
    assert response.json()["description"] == "They write."
    assert response.json()["permissions"] == ["users:read"]
    assert (await client.get("/admin/roles/editors", headers=root)).status_code == 404
    assert (await client.get("/admin/roles/writers", headers=root)).status_code == 200


async def test_patch_null_description_clears_it(client: httpx.AsyncClient, root: Headers) -> None:
    await client.post("/admin/roles", json={"name": "editors", "description": "x"}, headers=root)

    response = await client.patch("/admin/roles/editors", json={"description": None}, headers=root)

    assert response.status_code == 200
    assert response.json()["description"] is None


async def test_delete_role(client: httpx.AsyncClient, root: Headers) -> None:
    await create_role(client, root, "editors")

    response = await client.delete("/admin/roles/editors", headers=root)

    assert response.status_code == 204
    assert (await client.get("/admin/roles/editors", headers=root)).status_code == 404


async def test_deleting_a_role_in_use_takes_it_from_its_holders(
    client: httpx.AsyncClient, session_factory: Sessions, root: Headers
) -> None:
    await create_role(client, root, "readers", ["roles:read"])
    holder = await admin_headers(client, session_factory, "holder@example.com", roles=["readers"])
    assert (await client.get("/admin/roles", headers=holder)).status_code == 200

    response = await client.delete("/admin/roles/readers", headers=root)

    assert response.status_code == 204
    assert (await client.get("/users/me", headers=holder)).json()["roles"] == []
    assert (await client.get("/admin/roles", headers=holder)).status_code == 403
    [event] = await audit_events(session_factory, "role.deleted")
    assert event.details["role"] == "readers"
    assert event.details["holders"] == 1


# --- not found, conflicts, invalid bodies ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/roles/ghosts", None),
        ("PATCH", "/admin/roles/ghosts", {"description": "Boo."}),
        ("DELETE", "/admin/roles/ghosts", None),
        ("PUT", "/admin/roles/ghosts/permissions", {"permissions": []}),
    ],
)
async def test_unknown_role_is_404(
    client: httpx.AsyncClient,
    root: Headers,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = await client.request(method, path, json=body, headers=root)

    assert_problem(response, 404)


async def test_duplicate_role_name_is_409(client: httpx.AsyncClient, root: Headers) -> None:
    await create_role(client, root, "editors")

    response = await client.post("/admin/roles", json={"name": "editors"}, headers=root)

    assert_problem(response, 409)


async def test_renaming_onto_a_taken_name_is_409(client: httpx.AsyncClient, root: Headers) -> None:
    await create_role(client, root, "editors")
    await create_role(client, root, "writers")

    response = await client.patch("/admin/roles/editors", json={"name": "writers"}, headers=root)

    assert_problem(response, 409)
    assert (await client.get("/admin/roles/editors", headers=root)).status_code == 200


async def test_concurrent_creates_of_one_name_give_one_201_and_one_409(
    client: httpx.AsyncClient, root: Headers
) -> None:
    responses = await asyncio.gather(
        *(client.post("/admin/roles", json={"name": "twins"}, headers=root) for _ in range(2))
    )

    assert sorted(response.status_code for response in responses) == [201, 409]
    names = [
        role["name"] for role in (await client.get("/admin/roles", headers=root)).json()["items"]
    ]
    assert names.count("twins") == 1


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Editors"},
        {"name": "with space"},
        {"name": ""},
        {"name": "-leading-dash"},
        {"name": "r" * 101},
        {"name": "editors", "description": "d" * 1001},
        {"name": "editors", "permissions": ["not a codename"]},
        {"name": "editors", "permissions": [f"p:n{number}" for number in range(101)]},
        {"name": "editors", "is_builtin": True},
        {},
    ],
)
async def test_invalid_role_bodies_are_422(
    client: httpx.AsyncClient, root: Headers, body: dict[str, Any]
) -> None:
    response = await client.post("/admin/roles", json=body, headers=root)

    assert assert_problem(response, 422)["errors"]


@pytest.mark.parametrize("body", [{"name": None}, {"name": "Bad Name"}, {"permissions": []}])
async def test_invalid_role_updates_are_422(
    client: httpx.AsyncClient, root: Headers, body: dict[str, Any]
) -> None:
    await create_role(client, root, "editors")

    response = await client.patch("/admin/roles/editors", json=body, headers=root)

    assert_problem(response, 422)


async def test_unknown_permissions_are_422_and_named(
    client: httpx.AsyncClient, root: Headers
) -> None:
    response = await client.post(
        "/admin/roles",
        json={"name": "editors", "permissions": ["users:read", "ghosts:haunt"]},
        headers=root,
    )

    problem = assert_problem(response, 422)
    assert "ghosts:haunt" in problem["detail"]
    assert "users:read" not in problem["detail"]
    assert (await client.get("/admin/roles/editors", headers=root)).status_code == 404


async def test_replacing_with_unknown_permissions_is_422(
    client: httpx.AsyncClient, root: Headers
) -> None:
    await create_role(client, root, "editors", ["users:read"])

    response = await client.put(
        "/admin/roles/editors/permissions", json={"permissions": ["ghosts:haunt"]}, headers=root
    )

    assert "ghosts:haunt" in assert_problem(response, 422)["detail"]
    assert await role_permissions(client, root, "editors") == ["users:read"]


# --- permissions of a role ---------------------------------------------------------------


async def test_replace_role_permissions(client: httpx.AsyncClient, root: Headers) -> None:
    await create_role(client, root, "editors", ["users:read", "audit:read"])

    response = await client.put(
        "/admin/roles/editors/permissions",
        json={"permissions": ["users:write", "users:read", "users:write"]},
        headers=root,
    )

    assert response.status_code == 200, response.text
    assert response.json()["permissions"] == ["users:read", "users:write"]
    assert await role_permissions(client, root, "editors") == ["users:read", "users:write"]


async def test_removing_a_permission_takes_effect_at_once_for_holders(
    client: httpx.AsyncClient, session_factory: Sessions, root: Headers
) -> None:
    await create_role(client, root, "readers", ["roles:read"])
    holder = await admin_headers(client, session_factory, "holder@example.com", roles=["readers"])
    assert (await client.get("/admin/roles", headers=holder)).status_code == 200

    response = await client.put(
        "/admin/roles/readers/permissions", json={"permissions": []}, headers=root
    )

    assert response.status_code == 200
    assert_problem(await client.get("/admin/roles", headers=holder), 403)


# --- nobody grants more than they hold ---------------------------------------------------


@pytest.fixture
async def role_writer(client: httpx.AsyncClient, session_factory: Sessions) -> Headers:
    """An admin holding `roles:write` (and `roles:read`) only."""
    return await admin_headers(
        client, session_factory, "writer@example.com", permissions=["roles:write", "roles:read"]
    )


async def test_creating_a_role_with_a_permission_the_actor_lacks_is_403(
    client: httpx.AsyncClient, root: Headers, role_writer: Headers
) -> None:
    response = await client.post(
        "/admin/roles",
        json={"name": "escalate", "permissions": ["users:write"]},
        headers=role_writer,
    )

    assert "users:write" in assert_problem(response, 403)["detail"]
    assert (await client.get("/admin/roles/escalate", headers=root)).status_code == 404


async def test_adding_a_permission_the_actor_lacks_is_403_and_changes_nothing(
    client: httpx.AsyncClient, root: Headers, role_writer: Headers
) -> None:
    await create_role(client, root, "editors", ["roles:read"])

    response = await client.put(
        "/admin/roles/editors/permissions",
        json={"permissions": ["roles:read", "users:write"]},
        headers=role_writer,
    )

    assert "users:write" in assert_problem(response, 403)["detail"]
    assert await role_permissions(client, root, "editors") == ["roles:read"]


async def test_an_actor_grants_what_they_hold_and_removes_what_they_lack(
    client: httpx.AsyncClient, root: Headers, role_writer: Headers
) -> None:
    await create_role(client, root, "editors", ["users:write"])

    created = await client.post(
        "/admin/roles",
        json={"name": "helpers", "permissions": ["roles:write"]},
        headers=role_writer,
    )
    emptied = await client.put(
        "/admin/roles/editors/permissions", json={"permissions": []}, headers=role_writer
    )

    assert created.status_code == 201, created.text
    assert emptied.status_code == 200, emptied.text
    assert await role_permissions(client, root, "editors") == []


async def test_unknown_permissions_are_422_before_grant_checks(
    client: httpx.AsyncClient, role_writer: Headers
) -> None:
    response = await client.post(
        "/admin/roles",
        json={"name": "editors", "permissions": ["ghosts:haunt"]},
        headers=role_writer,
    )

    assert_problem(response, 422)


async def test_a_superuser_grants_any_permission(client: httpx.AsyncClient, root: Headers) -> None:
    await create_role(client, root, "editors")

    response = await client.put(
        "/admin/roles/editors/permissions", json={"permissions": ["users:write"]}, headers=root
    )

    assert response.status_code == 200
    assert response.json()["permissions"] == ["users:write"]


# --- the built-in admin role -------------------------------------------------------------


async def test_admin_role_cannot_be_deleted(client: httpx.AsyncClient, root: Headers) -> None:
    response = await client.delete("/admin/roles/admin", headers=root)

    assert_problem(response, 409)
    assert (await client.get("/admin/roles/admin", headers=root)).status_code == 200


async def test_admin_role_cannot_be_renamed(client: httpx.AsyncClient, root: Headers) -> None:
    response = await client.patch("/admin/roles/admin", json={"name": "boss"}, headers=root)

    assert_problem(response, 409)
    assert (await client.get("/admin/roles/admin", headers=root)).status_code == 200


async def test_admin_role_description_can_change(client: httpx.AsyncClient, root: Headers) -> None:
    response = await client.patch(
        "/admin/roles/admin", json={"name": "admin", "description": "Everything."}, headers=root
    )

    assert response.status_code == 200, response.text
    assert response.json()["description"] == "Everything."


async def test_admin_role_keeps_the_builtin_permissions(
    client: httpx.AsyncClient, root: Headers
) -> None:
    before = await role_permissions(client, root, "admin")

    response = await client.put(
        "/admin/roles/admin/permissions", json={"permissions": ["users:read"]}, headers=root
    )

    problem = assert_problem(response, 409)
    assert "users:write" in problem["detail"]
    assert await role_permissions(client, root, "admin") == before


async def test_admin_role_can_gain_and_lose_other_permissions(
    client: httpx.AsyncClient, root: Headers
) -> None:
    builtins = await role_permissions(client, root, "admin")
    await client.post("/admin/permissions", json={"codename": "reports:export"}, headers=root)

    gained = await client.put(
        "/admin/roles/admin/permissions",
        json={"permissions": [*builtins, "reports:export"]},
        headers=root,
    )
    lost = await client.put(
        "/admin/roles/admin/permissions", json={"permissions": builtins}, headers=root
    )

    assert "reports:export" in gained.json()["permissions"]
    assert lost.status_code == 200
    assert lost.json()["permissions"] == builtins


# --- audit trail -------------------------------------------------------------------------


async def test_role_changes_are_audited_with_the_actor(
    client: httpx.AsyncClient, session_factory: Sessions, root: Headers
) -> None:
    actor = await user_id(client, root)

    await create_role(client, root, "editors", ["users:read"])
    await client.patch("/admin/roles/editors", json={"name": "writers"}, headers=root)
    await client.put(
        "/admin/roles/writers/permissions", json={"permissions": ["audit:read"]}, headers=root
    )
    await client.delete("/admin/roles/writers", headers=root)

    [created] = await audit_events(session_factory, "role.created")
    [updated] = await audit_events(session_factory, "role.updated")
    [changed] = await audit_events(session_factory, "role.permissions_changed")
    [deleted] = await audit_events(session_factory, "role.deleted")
    for event in (created, updated, changed, deleted):
        assert str(event.actor_id) == actor
    assert created.details == {"role": "editors", "permissions": ["users:read"]}
    assert updated.details["role"] == "writers"
    assert updated.details["previous_name"] == "editors"
    assert changed.details == {
        "role": "writers",
        "added": ["audit:read"],
        "removed": ["users:read"],
    }
    assert deleted.details["holders"] == 0


async def test_refused_and_empty_changes_are_not_audited(
    client: httpx.AsyncClient, session_factory: Sessions, root: Headers, role_writer: Headers
) -> None:
    await create_role(client, root, "editors", ["users:read"])

    await client.put(
        "/admin/roles/editors/permissions", json={"permissions": ["users:read"]}, headers=root
    )
    await client.put(
        "/admin/roles/editors/permissions",
        json={"permissions": ["users:write"]},
        headers=role_writer,
    )

    assert await audit_events(session_factory, "role.permissions_changed") == []
