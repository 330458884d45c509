"""The token endpoint holds registered clients to their registration: each uses only its
grant types (else `unauthorized_client`), the password grant is for first-party clients, a
public client names itself without a secret, and either secret method is accepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.runtime import runtime_of
from tests.support.admins import (
    admin_headers,
    audit_events,
    register_client,
    register_public_client,
)
from tests.support.flows import PASSWORD, basic, register

Sessions = async_sessionmaker[AsyncSession]

FIRST_PARTY = {"is_first_party": True, "grant_types": ["password", "refresh_token"]}
CALLBACK = ["https://app.example.com/callback"]


@pytest.fixture
async def root(client: httpx.AsyncClient, sessions: Sessions) -> dict[str, str]:
    """A superuser's headers; ada@example.com is registered too."""
    headers = await admin_headers(client, sessions, "root@example.com", superuser=True)
    await register(client)
    return headers


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


async def token(client: httpx.AsyncClient, grant_type: str, **kwargs: Any) -> httpx.Response:
    data = {"grant_type": grant_type, **kwargs.pop("data", {})}
    if grant_type == "password":
        data = {"username": "ada@example.com", "password": PASSWORD, **data}
    return await client.post("/auth/token", data=data, **kwargs)


def client_id_of(app: FastAPI, response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    claims = runtime_of(app).token_codec.decode(response.json()["access_token"])
    return str(claims["client_id"])


# --- client credentials --------------------------------------------------------------------


async def test_only_a_client_registered_for_it_gets_the_client_credentials_grant(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    service = await register_client(client, root, name="billing")
    resource_server = await register_client(client, root, grant_types=[], scopes=["introspect"])
    web_app = await register_client(
        client, root, grant_types=["authorization_code"], redirect_uris=CALLBACK
    )

    assert (await token(client, "client_credentials", headers=basic(*service))).status_code == 200
    for credentials in (resource_server, web_app):
        refused = await token(client, "client_credentials", headers=basic(*credentials))
        assert_oauth_error(refused, 400, "unauthorized_client")
    # The resource server still introspects: that takes no grant.
    introspection = await client.post(
        "/auth/introspect", data={"token": "x"}, headers=basic(*resource_server)
    )
    assert introspection.json() == {"active": False}


# --- the password grant --------------------------------------------------------------------


async def test_a_first_party_confidential_client_signs_users_in_with_its_own_client_id(
    app: FastAPI, client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    client_id, secret = await register_client(client, root, name="bff", **FIRST_PARTY)

    with_basic = await token(client, "password", headers=basic(client_id, secret))
    with_form = await token(
        client, "password", data={"client_id": client_id, "client_secret": secret}
    )

    assert client_id_of(app, with_basic) == client_id_of(app, with_form) == client_id
    refresh_token = with_basic.json()["refresh_token"]
    refreshed = await token(
        client,
        "refresh_token",
        data={"refresh_token": refresh_token},
        headers=basic(client_id, secret),
    )
    assert client_id_of(app, refreshed) == client_id
    # The refresh token stays bound to it: the default first-party client cannot use it.
    stolen = await token(
        client, "refresh_token", data={"refresh_token": refreshed.json()["refresh_token"]}
    )
    assert_oauth_error(stolen, 400, "invalid_grant")


async def test_the_password_grant_is_refused_to_every_client_not_registered_first_party_for_it(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str]
) -> None:
    service = await register_client(client, root)
    first_party_service = await register_client(client, root, is_first_party=True)
    third_party_app = await register_client(
        client,
        root,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=CALLBACK,
    )
    spa = await register_public_client(
        client, root, grant_types=["authorization_code"], redirect_uris=CALLBACK
    )

    attempts = [
        await token(client, "password", headers=basic(*credentials))
        for credentials in (service, first_party_service, third_party_app)
    ]
    attempts.append(await token(client, "password", data={"client_id": spa}))

    for response in attempts:
        assert_oauth_error(response, 400, "unauthorized_client")
    assert len(await audit_events(sessions, "login.succeeded")) == 1  # root's, in the fixture


async def test_a_client_without_the_refresh_grant_gets_no_refresh_token_and_cannot_refresh(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    credentials = await register_client(client, root, is_first_party=True, grant_types=["password"])

    signed_in = await token(client, "password", headers=basic(*credentials))
    refresh = await token(
        client, "refresh_token", data={"refresh_token": "anything"}, headers=basic(*credentials)
    )

    assert signed_in.status_code == 200, signed_in.text
    assert "refresh_token" not in signed_in.json()
    assert_oauth_error(refresh, 400, "unauthorized_client")


async def test_the_mfa_grant_is_refused_to_a_client_not_allowed_the_password_grant(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    service = await register_client(client, root)

    response = await token(
        client,
        "urn:authsvc:params:oauth:grant-type:mfa",
        data={"mfa_token": "x", "otp": "123456"},
        headers=basic(*service),
    )

    assert_oauth_error(response, 400, "unauthorized_client")


# --- registered public clients -------------------------------------------------------------


async def test_a_registered_public_client_names_itself_without_a_secret(
    app: FastAPI, client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    spa = await register_public_client(client, root, **FIRST_PARTY)

    signed_in = await token(client, "password", data={"client_id": spa})
    # Swagger UI's Authorize sends HTTP Basic with an empty secret.
    empty_basic = await token(client, "password", headers=basic(spa, ""))
    refreshed = await token(
        client,
        "refresh_token",
        data={"refresh_token": signed_in.json()["refresh_token"], "client_id": spa},
    )

    assert client_id_of(app, signed_in) == client_id_of(app, empty_basic) == spa
    assert client_id_of(app, refreshed) == spa


async def test_a_secret_presented_for_a_public_client_is_invalid_client(
    client: httpx.AsyncClient, sessions: Sessions, root: dict[str, str]
) -> None:
    spa = await register_public_client(client, root, **FIRST_PARTY)

    attempts = [
        await token(client, "password", headers=basic(spa, "a-secret")),
        await token(client, "password", data={"client_id": spa, "client_secret": "a-secret"}),
        await token(client, "client_credentials", headers=basic(spa, "a-secret")),
        await token(client, "client_credentials", data={"client_id": spa}),
        await client.post("/auth/introspect", data={"token": "x"}, headers=basic(spa, "x")),
    ]

    for response in attempts:
        assert_oauth_error(response, 401, "invalid_client")
    failures = await audit_events(sessions, "client.authentication_failed")
    assert [event.details["known"] for event in failures] == [True] * 4


async def test_a_disabled_public_client_is_nobody(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    spa = await register_public_client(client, root, **FIRST_PARTY)
    signed_in = (await token(client, "password", data={"client_id": spa})).json()

    disabled = await client.patch(f"/admin/clients/{spa}", json={"is_active": False}, headers=root)

    assert disabled.status_code == 200
    assert_oauth_error(
        await token(client, "password", data={"client_id": spa}), 401, "invalid_client"
    )
    refresh = await token(
        client,
        "refresh_token",
        data={"refresh_token": signed_in["refresh_token"], "client_id": spa},
    )
    assert_oauth_error(refresh, 401, "invalid_client")


async def test_a_public_client_not_allowed_the_refresh_grant_cannot_refresh(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    spa = await register_public_client(
        client, root, grant_types=["authorization_code"], redirect_uris=CALLBACK
    )

    response = await token(
        client, "refresh_token", data={"refresh_token": "anything", "client_id": spa}
    )

    assert_oauth_error(response, 400, "unauthorized_client")


# --- how the secret is sent ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_either_secret_method_is_accepted_whichever_was_registered(
    client: httpx.AsyncClient, root: dict[str, str], method: str
) -> None:
    client_id, secret = await register_client(client, root, token_endpoint_auth_method=method)

    with_basic = await token(client, "client_credentials", headers=basic(client_id, secret))
    with_form = await token(
        client, "client_credentials", data={"client_id": client_id, "client_secret": secret}
    )

    assert with_basic.status_code == with_form.status_code == 200
