"""Who may use the password and refresh grants and revocation: public first-party clients
without a secret, service clients only with the right credentials, and each client only with
its own tokens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.runtime import runtime_of
from tests.support.admins import admin_headers, audit_events, register_client
from tests.support.flows import PASSWORD, basic, bearer, password_grant, refresh, register

Sessions = async_sessionmaker[AsyncSession]
MOBILE = "authsvc-mobile"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"public_clients": ["authsvc-web", MOBILE]}


@pytest.fixture
async def service_client(client: httpx.AsyncClient, sessions: Sessions) -> tuple[str, str]:
    """A registered service client's id and secret (the superuser made to create it is
    root@example.com); ada@example.com is registered too."""
    root = await admin_headers(client, sessions, superuser=True)
    credentials = await register_client(client, root, name="billing")
    await register(client)
    return credentials


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


def wrong_credentials(client_id: str, secret: str) -> list[dict[str, Any]]:
    """Ways to present client credentials that are not right, as request keyword arguments."""
    return [
        {"headers": basic(client_id, secret + "x")},
        {"headers": basic("no-such-client", secret)},
        {"headers": basic("authsvc-web", "a-secret")},  # a public client has none to present
        {"data": {"client_id": client_id, "client_secret": "wrong"}},
    ]


async def sign_in_for(
    client: httpx.AsyncClient, *, data: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD}
    return await client.post("/auth/token", data={**form, **(data or {})}, **kwargs)


async def refresh_for(
    client: httpx.AsyncClient, token: str, *, data: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return await client.post("/auth/token", data={**form, **(data or {})}, **kwargs)


async def test_wrong_client_credentials_on_the_password_grant_are_refused_invalid_client(
    client: httpx.AsyncClient, service_client: tuple[str, str], sessions: Sessions
) -> None:
    for attempt in wrong_credentials(*service_client):
        response = await sign_in_for(client, **attempt)

        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")
    # Counted and audited like any failed client authentication; nobody signed in.
    assert len(await audit_events(sessions, "client.authentication_failed")) == 4
    assert len(await audit_events(sessions, "login.succeeded")) == 1  # root's, in the fixture


async def test_a_service_client_on_the_password_grant_is_refused_unauthorized_client(
    client: httpx.AsyncClient, service_client: tuple[str, str], sessions: Sessions
) -> None:
    client_id, secret = service_client

    with_basic = await sign_in_for(client, headers=basic(client_id, secret))
    with_form = await sign_in_for(client, data={"client_id": client_id, "client_secret": secret})

    for response in (with_basic, with_form):
        assert_oauth_error(response, 400, "unauthorized_client")
    assert len(await audit_events(sessions, "login.succeeded")) == 1  # root's, in the fixture


@pytest.mark.parametrize("named", ["no-such-client", "service"])
async def test_a_bare_client_id_that_is_not_a_public_client_is_refused_invalid_client(
    client: httpx.AsyncClient, service_client: tuple[str, str], named: str
) -> None:
    client_id = service_client[0] if named == "service" else named

    response = await sign_in_for(client, data={"client_id": client_id})

    assert_oauth_error(response, 401, "invalid_client")


async def test_a_public_client_signs_in_with_its_bare_client_id(
    app: FastAPI, client: httpx.AsyncClient, service_client: tuple[str, str]
) -> None:
    response = await sign_in_for(client, data={"client_id": MOBILE})

    assert response.status_code == 200, response.text
    claims = runtime_of(app).token_codec.decode(response.json()["access_token"])
    assert claims["client_id"] == MOBILE
    anonymous = await sign_in_for(client)  # today's frontends name no client
    assert runtime_of(app).token_codec.decode(anonymous.json()["access_token"])["client_id"] == (
        "authsvc-web"
    )


async def test_wrong_client_credentials_on_the_refresh_grant_are_refused_and_spend_nothing(
    client: httpx.AsyncClient, service_client: tuple[str, str]
) -> None:
    tokens = (await sign_in_for(client)).json()

    for attempt in wrong_credentials(*service_client):
        assert_oauth_error(
            await refresh_for(client, tokens["refresh_token"], **attempt), 401, "invalid_client"
        )

    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_a_refresh_token_is_refused_to_any_other_client_and_stays_usable(
    client: httpx.AsyncClient, service_client: tuple[str, str]
) -> None:
    client_id, secret = service_client
    web = (await sign_in_for(client)).json()
    mobile = (await sign_in_for(client, data={"client_id": MOBILE})).json()

    others = [
        await refresh_for(client, web["refresh_token"], data={"client_id": MOBILE}),
        await refresh_for(client, mobile["refresh_token"]),  # naming no client is authsvc-web
    ]
    # A service client is not even allowed the refresh grant.
    service = await refresh_for(client, web["refresh_token"], headers=basic(client_id, secret))

    for response in others:
        assert_oauth_error(response, 400, "invalid_grant")
    assert_oauth_error(service, 400, "unauthorized_client")
    assert (await refresh(client, web["refresh_token"])).status_code == 200
    own = await refresh_for(client, mobile["refresh_token"], data={"client_id": MOBILE})
    assert own.status_code == 200, own.text


async def test_revocation_with_wrong_client_credentials_is_refused_and_revokes_nothing(
    client: httpx.AsyncClient, service_client: tuple[str, str]
) -> None:
    tokens = (await sign_in_for(client)).json()

    for attempt in wrong_credentials(*service_client):
        data = {"token": tokens["refresh_token"], **attempt.pop("data", {})}
        response = await client.post("/auth/revoke", data=data, **attempt)
        assert_oauth_error(response, 401, "invalid_client")

    me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_a_client_revoking_another_clients_token_gets_200_and_changes_nothing(
    client: httpx.AsyncClient, service_client: tuple[str, str]
) -> None:
    client_id, secret = service_client
    web = (await sign_in_for(client)).json()
    mobile = (await sign_in_for(client, data={"client_id": MOBILE})).json()

    attempts = [
        ({"token": web["refresh_token"]}, basic(client_id, secret)),
        ({"token": web["access_token"], "client_id": MOBILE}, {}),
        ({"token": mobile["refresh_token"]}, {}),  # naming no client is authsvc-web
    ]
    for data, headers in attempts:
        assert (await client.post("/auth/revoke", data=data, headers=headers)).status_code == 200

    assert (await refresh(client, web["refresh_token"])).status_code == 200
    own = await refresh_for(client, mobile["refresh_token"], data={"client_id": MOBILE})
    assert own.status_code == 200
    # Its own client revokes it: named, as OAuth libraries do for public clients.
    revoked = await client.post(
        "/auth/revoke", data={"token": own.json()["refresh_token"], "client_id": MOBILE}
    )
    assert revoked.status_code == 200
    again = await refresh_for(client, own.json()["refresh_token"], data={"client_id": MOBILE})
    assert again.status_code == 400


async def test_a_client_secret_without_a_client_id_is_invalid_request(
    client: httpx.AsyncClient,
) -> None:
    await register(client)

    response = await password_grant(client, "ada@example.com", client_secret="a secret")

    assert_oauth_error(response, 400, "invalid_request")
