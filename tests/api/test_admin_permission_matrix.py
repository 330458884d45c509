"""Who may call each /admin route: one table, checked for every caller, and a guard that no
admin route is left out of it.

Every row names a route as mounted (method and path template), a body it accepts, the
permission it needs and the status it answers when that permission is held. For every row:
no token is a bare `Bearer` 401, a forged token an `invalid_token` 401, a signed-in user
without the permission (holding none, or a different one) an `insufficient_scope` 403 naming
it, and none of those refused calls changes anything; a holder of the permission and a
superuser get through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import create_app
from tests.support.admins import admin_headers
from tests.support.databases import make_settings
from tests.support.flows import assert_problem, bearer, register, register_and_sign_in, sign_in

Sessions = async_sessionmaker[AsyncSession]
Headers = dict[str, str]


class AdminRoute(NamedTuple):
    method: str
    path: str  # the route's template; `{...}` filled from the `existing` fixture
    body: Any  # strings in it are filled the same way
    permission: str
    success: int


ROUTES = [
    AdminRoute("GET", "/admin/users", None, "users:read", 200),
    AdminRoute("POST", "/admin/users", {"email": "new@example.com"}, "users:write", 201),
    AdminRoute(
        "POST",
        "/admin/users/bulk",
        {"ids": ["{user_id}"], "action": "activate"},
        "users:write",
        200,
    ),
    AdminRoute("GET", "/admin/users/{user_id}", None, "users:read", 200),
    AdminRoute("PATCH", "/admin/users/{user_id}", {"full_name": "Ada L."}, "users:write", 200),
    AdminRoute("DELETE", "/admin/users/{user_id}", None, "users:write", 204),
    AdminRoute("PUT", "/admin/users/{user_id}/roles", {"roles": []}, "users:write", 200),
    AdminRoute("DELETE", "/admin/users/{user_id}/sessions", None, "users:write", 204),
    AdminRoute("DELETE", "/admin/users/{user_id}/mfa", None, "users:write", 204),
    AdminRoute("GET", "/admin/roles", None, "roles:read", 200),
    AdminRoute("POST", "/admin/roles", {"name": "new-role"}, "roles:write", 201),
    AdminRoute("GET", "/admin/roles/{name}", None, "roles:read", 200),
    AdminRoute("PATCH", "/admin/roles/{name}", {"description": "Edits."}, "roles:write", 200),
    AdminRoute("DELETE", "/admin/roles/{name}", None, "roles:write", 204),
    AdminRoute("PUT", "/admin/roles/{name}/permissions", {"permissions": []}, "roles:write", 200),
    AdminRoute("GET", "/admin/permissions", None, "roles:read", 200),
    AdminRoute("POST", "/admin/permissions", {"codename": "reports:run"}, "roles:write", 201),
    AdminRoute("GET", "/admin/permissions/{codename}", None, "roles:read", 200),
    AdminRoute(
        "PATCH", "/admin/permissions/{codename}", {"description": "Export."}, "roles:write", 200
    ),
    AdminRoute("DELETE", "/admin/permissions/{codename}", None, "roles:write", 204),
    AdminRoute("GET", "/admin/clients", None, "clients:write", 200),
    AdminRoute(
        "POST",
        "/admin/clients",
        {"name": "billing", "scopes": ["introspect"]},
        "clients:write",
        201,
    ),
    AdminRoute("GET", "/admin/clients/{client_id}", None, "clients:write", 200),
    AdminRoute("PATCH", "/admin/clients/{client_id}", {"name": "renamed"}, "clients:write", 200),
    AdminRoute("DELETE", "/admin/clients/{client_id}", None, "clients:write", 204),
    AdminRoute("GET", "/admin/audit-events", None, "audit:read", 200),
]
ROUTE_IDS = [f"{route.method} {route.path}" for route in ROUTES]

# A permission other than the one a route needs: holding it must not open the route.
OTHER_PERMISSION = {
    "users:read": "roles:read",
    "users:write": "users:read",
    "roles:read": "users:read",
    "roles:write": "roles:read",
    "clients:write": "users:write",
    "audit:read": "users:read",
}

# What a refused call must leave as it was: everything these list (at most 200 rows each).
# Not the audit trail: refused calls are recorded there (test_access_denied_audit).
STATE_LISTS = ("/admin/users", "/admin/roles", "/admin/permissions", "/admin/clients")


def test_every_admin_route_is_in_the_table(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"))
    mounted: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.router.routes):
        if route.path is not None and (route.path == "/admin" or route.path.startswith("/admin/")):
            # A mount or other method-less route under /admin is never in the table: it fails.
            mounted |= {(method, route.path) for method in route.methods or {"ANY"}}

    assert mounted == {(route.method, route.path) for route in ROUTES}
    assert len(ROUTES) == len(set(ROUTE_IDS)), "a route is in the table twice"


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(names)
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    return value


@pytest.fixture
async def existing(client: httpx.AsyncClient, root: Headers) -> dict[str, str]:
    """One of each thing an admin route acts on, made by the superuser `root`; the values of
    the path parameters that name them."""
    user = await register(client, "target@example.com")
    # An authenticator waiting for confirmation: something for the MFA reset to remove.
    target = await sign_in(client, "target@example.com")
    enrolment = await client.post("/users/me/mfa/totp", headers=bearer(target["access_token"]))
    assert enrolment.status_code == 201, enrolment.text
    role = await client.post("/admin/roles", json={"name": "editors"}, headers=root)
    assert role.status_code == 201, role.text
    permission = await client.post(
        "/admin/permissions", json={"codename": "reports:export"}, headers=root
    )
    assert permission.status_code == 201, permission.text
    service = await client.post("/admin/clients", json={"name": "billing"}, headers=root)
    assert service.status_code == 201, service.text
    return {
        "user_id": str(user["id"]),
        "name": "editors",
        "codename": "reports:export",
        "client_id": str(service.json()["client_id"]),
    }


async def admin_state(client: httpx.AsyncClient, root: Headers) -> list[Any]:
    """Everything the admin lists show, as the superuser sees it."""
    pages = []
    for path in STATE_LISTS:
        response = await client.get(path, params={"limit": 200}, headers=root)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        pages.append(response.json()["items"])
    return pages


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_only_holders_of_the_permission_get_through(
    client: httpx.AsyncClient,
    sessions: Sessions,
    root: Headers,
    existing: dict[str, str],
    route: AdminRoute,
) -> None:
    url, body = _fill(route.path, existing), _fill(route.body, existing)
    plain = bearer((await register_and_sign_in(client, "plain@example.com"))["access_token"])
    other = await admin_headers(
        client, sessions, "other@example.com", permissions=[OTHER_PERMISSION[route.permission]]
    )
    holder = await admin_headers(
        client, sessions, "holder@example.com", permissions=[route.permission]
    )
    before = await admin_state(client, root)
    assert {role["name"]: role for role in before[1]}["editors"]["description"] is None
    permissions = {permission["codename"]: permission for permission in before[2]}
    assert permissions["reports:export"]["description"] is None

    anonymous = await client.request(route.method, url, json=body)
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"

    forged = await client.request(route.method, url, json=body, headers=bearer("not.a.token"))
    assert_problem(forged, 401)
    assert forged.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    for headers in (plain, other):
        refused = await client.request(route.method, url, json=body, headers=headers)
        problem = assert_problem(refused, 403)
        assert problem["type"] == "urn:authsvc:problem:permission-denied"
        assert route.permission in problem["detail"]
        assert refused.headers["www-authenticate"] == (
            f'Bearer error="insufficient_scope", scope="{route.permission}"'
        )

    assert await admin_state(client, root) == before
    allowed = await client.request(route.method, url, json=body, headers=holder)
    assert allowed.status_code == route.success, allowed.text


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_superusers_get_through_without_any_permission(
    client: httpx.AsyncClient, root: Headers, existing: dict[str, str], route: AdminRoute
) -> None:
    response = await client.request(
        route.method,
        _fill(route.path, existing),
        json=_fill(route.body, existing),
        headers=root,
    )

    assert response.status_code == route.success, response.text
