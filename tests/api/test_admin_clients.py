"""Service clients over HTTP: who may manage them, the secret shown once and stored only as a
digest, scopes checked against the permissions, and the audit trail."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.repositories import AuditEventRepository, ServiceClientRepository
from app.security.client_secrets import verify_client_secret
from tests.support.admins import admin_headers
from tests.support.flows import user_id

Sessions = async_sessionmaker[AsyncSession]


async def superuser(client: httpx.AsyncClient, sessions: Sessions) -> dict[str, str]:
    return await admin_headers(client, sessions, "root@example.com", superuser=True)


async def create_client(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/admin/clients", json={"name": "billing", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def stored_client_ids(sessions: Sessions) -> set[str]:
    async with sessions() as session:
        rows = await ServiceClientRepository(session).list_by()
    return {row.client_id for row in rows}


# --- who may call what ---------------------------------------------------------------------


async def test_the_seeded_admin_role_manages_clients(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    admin = await admin_headers(client, sessions, "admin@example.com", roles=["admin"])

    created = await create_client(client, admin, scopes=["users:read", "introspect"])

    assert created["scopes"] == ["users:read", "introspect"]


# --- the secret ----------------------------------------------------------------------------


async def test_the_secret_is_returned_once_and_only_its_digest_is_stored(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)

    response = await client.post(
        "/admin/clients",
        json={"name": "billing", "scopes": ["users:read"], "audiences": ["billing-api"]},
        headers=root,
    )

    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    secret = body["client_secret"]
    assert len(secret) >= 43  # 256 bits, base64url
    assert set(body) == {
        "id",
        "client_id",
        "name",
        "scopes",
        "audiences",
        "grant_types",
        "redirect_uris",
        "post_logout_redirect_uris",
        "token_endpoint_auth_method",
        "is_first_party",
        "is_active",
        "created_at",
        "client_secret",
    }
    assert body["audiences"] == ["billing-api"]
    assert body["is_active"] is True
    async with sessions() as session:
        row = await ServiceClientRepository(session).get_by_client_id(body["client_id"])
    assert row is not None
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in row.secret_hash
    assert row.created_by_id is not None
    assert str(row.created_by_id) == await user_id(client, root)
    assert verify_client_secret(row, secret)
    assert not verify_client_secret(row, secret + "x")


async def test_the_list_never_shows_a_secret_or_its_digest(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)
    created = await create_client(client, root, scopes=["introspect"])

    response = await client.get("/admin/clients", headers=root)

    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item == {key: value for key, value in created.items() if key != "client_secret"}
    assert created["client_secret"] not in response.text
    assert "client_secret" not in item
    async with sessions() as session:
        row = await ServiceClientRepository(session).get_by_client_id(created["client_id"])
    assert row is not None
    assert row.secret_hash not in response.text


async def test_two_clients_get_different_ids_and_secrets(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)

    first = await create_client(client, root)
    second = await create_client(client, root)

    assert first["client_id"] != second["client_id"]
    assert first["client_secret"] != second["client_secret"]


async def test_a_client_id_that_is_a_public_clients_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = await superuser(client, sessions)
    # Ids are random: make the generator produce the public client's id.
    monkeypatch.setattr("app.services.admin.service_clients.new_client_id", lambda: "authsvc-web")

    response = await client.post("/admin/clients", json={"name": "web"}, headers=root)

    assert response.status_code == 409, response.text
    assert "authsvc-web" not in await stored_client_ids(sessions)


# --- listing -------------------------------------------------------------------------------


async def test_the_list_pages_newest_first(client: httpx.AsyncClient, sessions: Sessions) -> None:
    root = await superuser(client, sessions)
    names = [f"client-{n}" for n in range(3)]
    for name in names:
        await create_client(client, root, name=name)

    first = (await client.get("/admin/clients", params={"limit": 2}, headers=root)).json()
    rest = await client.get(
        "/admin/clients", params={"limit": 2, "cursor": first["next_cursor"]}, headers=root
    )

    assert [item["name"] for item in first["items"]] == ["client-2", "client-1"]
    assert [item["name"] for item in rest.json()["items"]] == ["client-0"]
    assert rest.json()["next_cursor"] is None


async def test_a_forged_cursor_is_400(client: httpx.AsyncClient, sessions: Sessions) -> None:
    root = await superuser(client, sessions)

    response = await client.get("/admin/clients", params={"cursor": "!!"}, headers=root)

    assert response.status_code == 400


# --- scopes --------------------------------------------------------------------------------


async def test_an_unknown_scope_is_422_and_creates_nothing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)

    response = await client.post(
        "/admin/clients", json={"name": "x", "scopes": ["users:read", "no:such"]}, headers=root
    )

    assert response.status_code == 422, response.text
    assert "no:such" in response.json()["detail"]
    assert await stored_client_ids(sessions) == set()


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x", "scopes": ["has space"]},
        {"name": "x", "client_secret": "chosen-by-me"},
        {"name": "x", "is_active": False},
    ],
)
async def test_invalid_or_privileged_fields_are_422(
    client: httpx.AsyncClient, sessions: Sessions, body: dict[str, Any]
) -> None:
    root = await superuser(client, sessions)

    response = await client.post("/admin/clients", json=body, headers=root)

    assert response.status_code == 422, response.text
    assert await stored_client_ids(sessions) == set()


async def test_nobody_creates_a_client_holding_a_permission_they_lack(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    holder = await admin_headers(
        client, sessions, "holder@example.com", permissions=["clients:write"]
    )

    response = await client.post(
        "/admin/clients", json={"name": "x", "scopes": ["users:write"]}, headers=holder
    )

    assert response.status_code == 403, response.text
    assert "users:write" in response.json()["detail"]
    assert await stored_client_ids(sessions) == set()


async def test_permissions_the_creator_holds_may_be_granted(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    holder = await admin_headers(
        client, sessions, "holder@example.com", permissions=["clients:write", "users:read"]
    )

    created = await create_client(client, holder, scopes=["users:read", "clients:write"])

    assert created["scopes"] == ["users:read", "clients:write"]


async def test_introspect_needs_only_clients_write(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    holder = await admin_headers(
        client, sessions, "holder@example.com", permissions=["clients:write"]
    )

    created = await create_client(client, holder, scopes=["introspect", "introspect"])

    assert created["scopes"] == ["introspect"]


# --- deleting and the audit trail ----------------------------------------------------------


async def test_deleting_an_unknown_client_is_404(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)
    created = await create_client(client, root)

    first = await client.delete(f"/admin/clients/{created['client_id']}", headers=root)
    again = await client.delete(f"/admin/clients/{created['client_id']}", headers=root)
    unknown = await client.delete("/admin/clients/no-such-client", headers=root)

    assert first.status_code == 204
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"
    assert unknown.status_code == 404
    assert await stored_client_ids(sessions) == set()


async def test_creation_and_deletion_are_audited_with_the_actor(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)
    actor_id = await user_id(client, root)
    created = await create_client(client, root, scopes=["introspect"])
    await client.delete(f"/admin/clients/{created['client_id']}", headers=root)

    async with sessions() as session:
        events = AuditEventRepository(session)
        [creation] = await events.list_by(type="client.created")
        [deletion] = await events.list_by(type="client.deleted")

    for event in (creation, deletion):
        assert str(event.actor_id) == actor_id
        assert event.details["client_id"] == created["client_id"]
        assert created["client_secret"] not in str(event.details)
    assert creation.details["scopes"] == ["introspect"]


# --- changes -------------------------------------------------------------------------------


async def test_a_client_is_renamed_disabled_and_rescoped(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)
    created = await create_client(client, root, scopes=["introspect"])
    url = f"/admin/clients/{created['client_id']}"

    changed = await client.patch(
        url,
        json={"name": "ledger", "is_active": False, "scopes": ["users:read"], "audiences": ["x"]},
        headers=root,
    )

    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["is_active"], body["scopes"], body["audiences"]) == (
        "ledger",
        False,
        ["users:read"],
        ["x"],
    )
    assert "client_secret" not in body
    assert (await client.get(url, headers=root)).json() == body
    async with sessions() as session:
        events = await AuditEventRepository(session).list_by(type="client.updated")
    assert events[0].details["fields"] == ["audiences", "is_active", "name", "scopes"]


async def test_rescoping_beyond_what_the_actor_holds_is_403_and_changes_nothing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    manager = await admin_headers(
        client, sessions, "manager@example.com", permissions=["clients:write"]
    )
    created = await create_client(client, manager, scopes=["introspect"])
    url = f"/admin/clients/{created['client_id']}"

    refused = await client.patch(url, json={"scopes": ["users:write"]}, headers=manager)
    unknown = await client.patch(url, json={"scopes": ["no:such"]}, headers=manager)

    assert refused.status_code == 403
    assert unknown.status_code == 422
    assert (await client.get(url, headers=manager)).json()["scopes"] == ["introspect"]


async def test_changing_an_unknown_client_is_404_and_bad_fields_422(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await superuser(client, sessions)
    created = await create_client(client, root)
    url = f"/admin/clients/{created['client_id']}"

    assert (await client.patch("/admin/clients/nope", json={}, headers=root)).status_code == 404
    assert (await client.get("/admin/clients/nope", headers=root)).status_code == 404
    for body in ({"client_secret": "mine"}, {"secret_hash": "x"}, {"is_active": "maybe"}):
        assert (await client.patch(url, json=body, headers=root)).status_code == 422
