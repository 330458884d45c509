"""Role administration under parallel requests: the final state is one of the submitted
ones, never a mix, and nothing points at a role or permission that is gone."""

from __future__ import annotations

import itertools
import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import Role
from app.models.rbac import user_roles
from tests.races.conftest import PARALLEL, burst, no_orphans, rows, scalar, statuses
from tests.support.flows import register

ROLES = ["alpha", "beta", "gamma", "delta"]
PERMISSIONS = ["reports:read", "reports:write", "invoices:read", "invoices:write"]


async def role_names_of(engine: AsyncEngine, user_id: str) -> list[str]:
    """The names of the roles the user holds, as the database has them."""
    statement = (
        select(Role.name)
        .join(user_roles, user_roles.c.role_id == Role.id)
        .where(user_roles.c.user_id == uuid.UUID(user_id))  # typed: SQLite stores it as hex
        .order_by(Role.name)
    )
    async with engine.connect() as connection:
        return list(await connection.scalars(statement))


async def create_roles(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for name in ROLES:
        response = await http.post("/admin/roles", headers=admin, json={"name": name})
        assert response.status_code == 201, response.text


async def create_permissions(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for codename in PERMISSIONS:
        response = await http.post("/admin/permissions", headers=admin, json={"codename": codename})
        assert response.status_code == 201, response.text


async def test_parallel_role_replacements_leave_exactly_one_submitted_set(
    http: httpx.AsyncClient, engine: AsyncEngine, superuser: dict[str, str]
) -> None:
    await create_roles(http, superuser)
    user = await register(http, "ada@example.com")
    submitted = [sorted(pair) for pair in itertools.combinations(ROLES, 2)]  # 6 distinct sets
    bodies = [submitted[n % len(submitted)] for n in range(PARALLEL)]

    responses = await burst(
        (
            lambda roles=roles: http.put(
                f"/admin/users/{user['id']}/roles", headers=superuser, json={"roles": roles}
            )
        )
        for roles in bodies
    )

    assert statuses(responses) == [200] * PARALLEL
    final = await role_names_of(engine, user["id"])
    assert final in submitted
    shown = (await http.get(f"/admin/users/{user['id']}", headers=superuser)).json()
    assert sorted(shown["roles"]) == final
    await no_orphans(engine)


async def test_parallel_creations_of_one_role_name_make_one_role(
    http: httpx.AsyncClient, engine: AsyncEngine, superuser: dict[str, str]
) -> None:
    responses = await burst(
        (
            lambda n=n: http.post(
                "/admin/roles", headers=superuser, json={"name": "editors", "description": f"#{n}"}
            )
        )
        for n in range(PARALLEL)
    )

    assert statuses(responses) == [201] + [409] * (PARALLEL - 1)
    assert await scalar(engine, "SELECT count(*) FROM roles WHERE name = 'editors'") == 1
    created = await scalar(engine, "SELECT count(*) FROM audit_events WHERE type = 'role.created'")
    assert created == 1


async def test_parallel_permission_replacements_leave_exactly_one_submitted_set(
    http: httpx.AsyncClient, engine: AsyncEngine, superuser: dict[str, str]
) -> None:
    await create_permissions(http, superuser)
    await create_roles(http, superuser)
    submitted = [sorted(pair) for pair in itertools.combinations(PERMISSIONS, 2)]
    bodies = [submitted[n % len(submitted)] for n in range(PARALLEL)]

    responses = await burst(
        (
            lambda permissions=permissions: http.put(
                "/admin/roles/alpha/permissions",
                headers=superuser,
                json={"permissions": permissions},
            )
        )
        for permissions in bodies
    )

    assert statuses(responses) == [200] * PARALLEL
    held = await rows(
        engine,
        "SELECT p.codename FROM role_permissions rp "
        "JOIN roles r ON r.id = rp.role_id JOIN permissions p ON p.id = rp.permission_id "
        "WHERE r.name = 'alpha' ORDER BY p.codename",
    )
    assert [codename for (codename,) in held] in submitted
    await no_orphans(engine)


async def delete_during_puts(
    http: httpx.AsyncClient, admin: dict[str, str], doomed: str, puts: dict[str, object]
) -> list[httpx.Response]:
    """DELETE `doomed` while PUTting each body of `puts` (path -> body), all at once; the
    PUT responses, in order. Each PUT is applied before the deletion or refused after it
    (the name is unknown then): never a 500, never half of it."""
    calls = [lambda: http.delete(doomed, headers=admin)]
    calls += [
        (lambda path=path, body=body: http.put(path, headers=admin, json=body))
        for path, body in puts.items()
    ]
    deleted, *put = await burst(calls)
    assert deleted.status_code == 204, deleted.text
    assert {r.status_code for r in put} <= {200, 422}, statuses(put)
    return put


async def test_deleting_a_role_while_it_is_being_assigned_leaves_no_dangling_assignment(
    http: httpx.AsyncClient, engine: AsyncEngine, superuser: dict[str, str]
) -> None:
    await create_roles(http, superuser)
    users = [await register(http, f"user{n}@example.com") for n in range(PARALLEL // 2)]

    responses = await delete_during_puts(
        http,
        superuser,
        "/admin/roles/alpha",
        {f"/admin/users/{user['id']}/roles": {"roles": ["alpha", "beta"]} for user in users},
    )

    assert await scalar(engine, "SELECT count(*) FROM roles WHERE name = 'alpha'") == 0
    for user, response in zip(users, responses, strict=True):
        # Applied before the deletion: alpha went with it. After: refused, nothing held.
        held = await role_names_of(engine, user["id"])
        assert held == (["beta"] if response.status_code == 200 else [])
    await no_orphans(engine)


async def test_deleting_a_permission_while_roles_are_given_it(
    http: httpx.AsyncClient, engine: AsyncEngine, superuser: dict[str, str]
) -> None:
    await create_permissions(http, superuser)
    await create_roles(http, superuser)

    await delete_during_puts(
        http,
        superuser,
        "/admin/permissions/reports:read",
        {
            f"/admin/roles/{name}/permissions": {"permissions": ["reports:read", "invoices:read"]}
            for name in ROLES
        },
    )

    remaining = "SELECT count(*) FROM permissions WHERE codename = 'reports:read'"
    assert await scalar(engine, remaining) == 0
    await no_orphans(engine)
