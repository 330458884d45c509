"""Registering clients for sign-in over HTTP: grant types, redirect URIs, post-logout redirect
URIs, the token endpoint authentication method and the first-party flag, stored as given and
read back; every rule they break is a 422 naming the field, and writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import ServiceClient
from app.repositories import ServiceClientRepository
from tests.support.admins import admin_headers, audit_events, register_any_client

Sessions = async_sessionmaker[AsyncSession]

SPA = {
    "name": "dashboard",
    "grant_types": ["authorization_code", "refresh_token"],
    "redirect_uris": ["https://app.example.com/callback?tenant=a", "http://127.0.0.1:5173/cb"],
    "post_logout_redirect_uris": ["https://app.example.com/"],
    "token_endpoint_auth_method": "none",
}
BACKEND_FOR_FRONTEND = {
    "name": "web",
    "grant_types": ["password", "refresh_token", "authorization_code"],
    "redirect_uris": ["https://www.example.com/auth/callback"],
    "token_endpoint_auth_method": "client_secret_post",
    "is_first_party": True,
}


@pytest.fixture
async def root(client: httpx.AsyncClient, sessions: Sessions) -> dict[str, str]:
    return await admin_headers(client, sessions, "root@example.com", superuser=True)


async def stored(sessions: Sessions, client_id: str) -> ServiceClient:
    async with sessions() as session:
        row = await ServiceClientRepository(session).get_by_client_id(client_id)
    assert row is not None
    return row


async def stored_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return await ServiceClientRepository(session).count()


def registration(body: dict[str, Any]) -> dict[str, Any]:
    """The registration fields of a client body."""
    fields = (
        "grant_types",
        "redirect_uris",
        "post_logout_redirect_uris",
        "token_endpoint_auth_method",
        "is_first_party",
    )
    return {field: body[field] for field in fields}


def assert_refused(response: httpx.Response, pointer: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer], response.text


# --- what is stored ------------------------------------------------------------------------


async def test_a_client_registered_without_the_new_fields_is_a_confidential_service_client(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str]
) -> None:
    created = await register_any_client(client, root, name="billing")

    assert registration(created) == {
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "token_endpoint_auth_method": "client_secret_basic",
        "is_first_party": False,
    }
    assert created["client_secret"]


@pytest.mark.parametrize("fields", [SPA, BACKEND_FOR_FRONTEND], ids=["spa", "bff"])
async def test_each_field_is_stored_as_given_and_read_back(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str], fields: dict[str, Any]
) -> None:
    created = await register_any_client(client, root, **fields)

    expected = {"is_first_party": False, "post_logout_redirect_uris": [], **fields}
    del expected["name"]
    assert registration(created) == expected
    one = await client.get(f"/admin/clients/{created['client_id']}", headers=root)
    [listed] = (await client.get("/admin/clients", headers=root)).json()["items"]
    assert registration(one.json()) == registration(listed) == expected
    row = await stored(sessions, created["client_id"])
    assert registration(row.__dict__) == expected
    [event] = await audit_events(sessions, "client.created")
    assert event.details["grant_types"] == fields["grant_types"]
    assert event.details["token_endpoint_auth_method"] == fields["token_endpoint_auth_method"]


async def test_a_public_client_gets_no_secret(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str]
) -> None:
    response = await client.post("/admin/clients", json=SPA, headers=root)

    assert response.status_code == 201, response.text
    assert "client_secret" not in response.json()
    row = await stored(sessions, response.json()["client_id"])
    assert row.secret_hash is None


async def test_repeated_grant_types_and_uris_are_kept_once_in_their_order(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    uris = ["https://b.example/cb", "https://a.example/cb", "https://b.example/cb"]

    created = await register_any_client(
        client,
        root,
        grant_types=["authorization_code", "client_credentials", "authorization_code"],
        redirect_uris=uris,
    )

    assert created["grant_types"] == ["authorization_code", "client_credentials"]
    assert created["redirect_uris"] == uris[:2]


async def test_a_resource_server_may_have_no_grant_at_all(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    created = await register_any_client(client, root, grant_types=[], scopes=["introspect"])

    assert created["grant_types"] == []
    assert created["client_secret"]


# --- what is refused -----------------------------------------------------------------------

LONG_URI = "https://app.example.com/" + "a" * 2000

# A body, and the field its refusal names (a JSON pointer into the body).
REFUSALS: list[tuple[dict[str, Any], str]] = [
    *(
        ({"grant_types": ["authorization_code"], "redirect_uris": [uri]}, "#/redirect_uris/0")
        for uri in [
            "/callback",  # relative
            "app.example.com/callback",
            "https://app.example.com/cb#",  # a fragment, even an empty one
            "https://app.example.com/cb#state",
            "https://user:pass@app.example.com/cb",
            "https://user@app.example.com/cb",
            "http://app.example.com/cb",  # http off loopback
            "http://localhost.example.com/cb",
            "http://127.0.0.2/cb",
            "https:///cb",  # no host
            "https://*.example.com/cb",
            "https://app.example.com:99999/cb",
            "https://[::1/cb",
            "https://app.example.com/c b",
            "https://exämple.com/cb",
            "https://app.example.com/\x00",
            LONG_URI,
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "myapp:/callback",  # a private-use scheme must be a reverse domain name
            "com.example.app:callback",  # ... followed by :/
            "app.example.com:8443/callback",  # an https URI without its scheme
        ]
    ),
    ({"redirect_uris": ["https://ok.example/cb", "http://evil.example/"]}, "#/redirect_uris/1"),
    # The pointer counts as sent, repeats included.
    (
        {"redirect_uris": ["https://ok.example/cb", "https://ok.example/cb", "http://evil/"]},
        "#/redirect_uris/2",
    ),
    ({"post_logout_redirect_uris": ["https://a.example/#x"]}, "#/post_logout_redirect_uris/0"),
    ({"redirect_uris": [f"https://a.example/{n}" for n in range(21)]}, "#/redirect_uris"),
    (
        {"post_logout_redirect_uris": [f"https://a.example/{n}" for n in range(21)]},
        "#/post_logout_redirect_uris",
    ),
    ({"grant_types": ["implicit"]}, "#/grant_types/0"),
    (
        {"grant_types": ["client_credentials", "urn:ietf:params:oauth:grant-type:device_code"]},
        "#/grant_types/1",
    ),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "#/token_endpoint_auth_method"),
    ({"grant_types": ["authorization_code"]}, "#/redirect_uris"),
    # A public client has no secret to prove itself with on the client-credentials grant.
    ({"token_endpoint_auth_method": "none"}, "#/grant_types"),
    (
        {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]},
        "#/grant_types",
    ),
    ({"grant_types": ["password"]}, "#/grant_types"),
    ({"grant_types": ["password"], "token_endpoint_auth_method": "none"}, "#/grant_types"),
    ({"grant_types": ["refresh_token"]}, "#/grant_types"),
    ({"grant_types": ["client_credentials", "refresh_token"]}, "#/grant_types"),
    ({"is_first_party": "yes please"}, "#/is_first_party"),
    ({"redirect_uris": "https://a.example/cb"}, "#/redirect_uris"),
]


async def test_every_refusal_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str]
) -> None:
    for body, pointer in REFUSALS:
        response = await client.post("/admin/clients", json={"name": "x", **body}, headers=root)

        assert_refused(response, pointer)
    assert await stored_count(sessions) == 0
    assert await audit_events(sessions, "client.created") == []


async def test_the_uris_native_apps_and_local_development_need_are_accepted(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    uris = [
        "http://127.0.0.1/callback",
        "http://[::1]:8080/callback",
        "http://localhost:3000/callback",
        "https://localhost/callback",
        "https://10.0.0.7:8443/callback",
        "https://[2001:db8::1]/callback",
        "com.example.app:/oauth2redirect",  # RFC 8252 section 7.1
        "com.example.app://callback",
        "https://app.example.com/callback?from=login&x=%20y",
        "HTTPS://App.Example.com/Callback",  # kept as written: matched exactly
    ]

    created = await register_any_client(
        client,
        root,
        grant_types=["authorization_code"],
        redirect_uris=uris,
        post_logout_redirect_uris=uris,
        token_endpoint_auth_method="none",
    )

    assert created["redirect_uris"] == created["post_logout_redirect_uris"] == uris


# --- changes -------------------------------------------------------------------------------


async def test_each_field_is_changed_and_read_back(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str]
) -> None:
    created = await register_any_client(client, root)
    url = f"/admin/clients/{created['client_id']}"
    change = {
        "grant_types": ["authorization_code", "password", "refresh_token"],
        "redirect_uris": ["https://www.example.com/cb"],
        "post_logout_redirect_uris": ["https://www.example.com/"],
        "token_endpoint_auth_method": "client_secret_post",
        "is_first_party": True,
    }

    changed = await client.patch(url, json=change, headers=root)

    assert changed.status_code == 200, changed.text
    assert registration(changed.json()) == change
    assert registration((await client.get(url, headers=root)).json()) == change
    [event] = await audit_events(sessions, "client.updated")
    assert event.details["fields"] == sorted(change)
    # A field left out stays as it is.
    renamed = await client.patch(url, json={"name": "renamed"}, headers=root)
    assert registration(renamed.json()) == change


async def test_a_change_breaking_a_rule_is_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str]
) -> None:
    bff = await register_any_client(client, root, **BACKEND_FOR_FRONTEND)
    spa = await register_any_client(client, root, **SPA)
    billing = await register_any_client(client, root)
    attempts = [
        (bff, {"is_first_party": False}, "#/is_first_party"),
        (bff, {"redirect_uris": []}, "#/redirect_uris"),
        (bff, {"redirect_uris": ["http://www.example.com/cb"]}, "#/redirect_uris/0"),
        (bff, {"token_endpoint_auth_method": "none"}, "#/token_endpoint_auth_method"),
        (
            spa,
            {"token_endpoint_auth_method": "client_secret_basic"},
            "#/token_endpoint_auth_method",
        ),
        (spa, {"grant_types": ["client_credentials"]}, "#/grant_types"),
        (billing, {"grant_types": ["authorization_code"]}, "#/grant_types"),
        (billing, {"grant_types": ["password"]}, "#/grant_types"),
    ]

    for before, body, pointer in attempts:
        url = f"/admin/clients/{before['client_id']}"
        assert_refused(await client.patch(url, json=body, headers=root), pointer)
        after = (await client.get(url, headers=root)).json()
        assert registration(after) == registration(before)
    assert await audit_events(sessions, "client.updated") == []


async def test_a_confidential_client_switches_between_basic_and_post(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    created = await register_any_client(client, root)
    url = f"/admin/clients/{created['client_id']}"

    to_post = await client.patch(
        url, json={"token_endpoint_auth_method": "client_secret_post"}, headers=root
    )

    assert to_post.status_code == 200, to_post.text
    assert to_post.json()["token_endpoint_auth_method"] == "client_secret_post"
