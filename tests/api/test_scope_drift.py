"""A token's scope follows what its subject may have now: a refresh narrows it, introspection
reports it, after a permission, a role or a client's scope was taken away."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.runtime import runtime_of
from tests.support.admins import grant, register_client, sign_in_holding
from tests.support.flows import basic, introspect, refresh, user_id

Sessions = async_sessionmaker[AsyncSession]


async def _take_the_permission_from_her_role(
    client: httpx.AsyncClient, root: dict[str, str], ada: str
) -> None:
    response = await client.put(
        f"/admin/roles/grant-{ada}/permissions", json={"permissions": ["audit:read"]}, headers=root
    )
    assert response.status_code == 200, response.text


async def _take_the_role_and_grant_another(
    client: httpx.AsyncClient, root: dict[str, str], ada: str
) -> None:
    created = await client.post(
        "/admin/roles", json={"name": "auditor", "permissions": ["audit:read"]}, headers=root
    )
    assert created.status_code == 201, created.text
    response = await client.put(
        f"/admin/users/{ada}/roles", json={"roles": ["auditor"]}, headers=root
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "take_away", [_take_the_permission_from_her_role, _take_the_role_and_grant_another]
)
async def test_a_refresh_narrows_the_scope_to_what_the_user_holds_now(
    app: FastAPI,
    client: httpx.AsyncClient,
    sessions: Sessions,
    root: dict[str, str],
    resource_server: dict[str, str],
    take_away: Any,
) -> None:
    tokens = await sign_in_holding(
        client, sessions, "users:read", "audit:read", scope="openid users:read audit:read"
    )
    assert tokens["scope"] == "audit:read openid users:read"
    ada = await user_id(client, {"Authorization": f"Bearer {tokens['access_token']}"})

    await take_away(client, root, ada)
    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    refreshed = response.json()
    assert refreshed["scope"] == "audit:read openid"
    assert (
        runtime_of(app).token_codec.decode(refreshed["access_token"])["scope"]
        == "audit:read openid"
    )
    for token in (refreshed["access_token"], refreshed["refresh_token"]):
        assert (await introspect(client, resource_server, token))["scope"] == "audit:read openid"
    # Given back, it is not refreshed back in: a scope is asked for at sign-in.
    async with sessions() as session:
        await grant(session, "ada@example.com", roles=["admin"])
    again = (await refresh(client, refreshed["refresh_token"])).json()
    assert again["scope"] == "audit:read openid"


async def test_introspection_reports_a_users_current_scope_before_any_refresh(
    client: httpx.AsyncClient,
    sessions: Sessions,
    root: dict[str, str],
    resource_server: dict[str, str],
) -> None:
    tokens = await sign_in_holding(
        client, sessions, "users:read", "audit:read", scope="openid users:read audit:read"
    )
    ada = await user_id(client, {"Authorization": f"Bearer {tokens['access_token']}"})

    await _take_the_permission_from_her_role(client, root, ada)

    for token in (tokens["access_token"], tokens["refresh_token"]):
        answer = await introspect(client, resource_server, token)
        assert answer["active"] is True
        assert answer["scope"] == "audit:read openid"


async def test_introspection_of_a_client_token_omits_scopes_taken_from_the_client(
    client: httpx.AsyncClient, root: dict[str, str], resource_server: dict[str, str]
) -> None:
    created = await client.post(
        "/admin/permissions", json={"codename": "reports:read"}, headers=root
    )
    assert created.status_code == 201
    client_id, secret = await register_client(
        client, root, name="worker", scopes=["users:read", "audit:read", "reports:read"]
    )
    token = (
        await client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, secret),
        )
    ).json()["access_token"]
    assert (await introspect(client, resource_server, token))["scope"] == (
        "audit:read reports:read users:read"
    )

    await client.patch(
        f"/admin/clients/{client_id}",
        json={"scopes": ["audit:read", "reports:read"]},
        headers=root,
    )
    assert (await client.delete("/admin/permissions/reports:read", headers=root)).status_code == 204

    answer = await introspect(client, resource_server, token)
    assert answer["active"] is True
    assert answer["scope"] == "audit:read"
