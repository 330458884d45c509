"""Introspection through the kit: authsvc's word on tokens that local verification still
accepts (logged out, deactivated), and the consumer's revocation-sensitive route."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from authsvc_kit import AuthsvcKit, AuthsvcUnavailable, Claims, Introspector, InvalidToken
from examples.consumer_service import create_app
from tests.kit.conftest import AUDIENCE, CountingTransport
from tests.support.admins import admin_headers, sign_in_holding, take_back
from tests.support.flows import bearer, register_and_sign_in
from tests.support.live_server import LiveService

INTROSPECT_PATH = "/auth/introspect"


async def create_client(
    service: httpx.AsyncClient, admin: dict[str, str], scopes: list[str]
) -> tuple[str, str]:
    response = await service.post(
        "/admin/clients", json={"name": "consumer", "scopes": scopes}, headers=admin
    )
    assert response.status_code == 201, response.text
    return response.json()["client_id"], response.json()["client_secret"]


@pytest.fixture
async def admin(
    service_client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> dict[str, str]:
    return await admin_headers(service_client, session_factory, superuser=True)


@pytest.fixture
async def credentials(service_client: httpx.AsyncClient, admin: dict[str, str]) -> tuple[str, str]:
    """A service client allowed to introspect."""
    return await create_client(service_client, admin, ["introspect"])


@pytest.fixture
def introspector(
    live_service: LiveService, credentials: tuple[str, str], http: httpx.AsyncClient
) -> Introspector:
    return Introspector(f"{live_service.url}{INTROSPECT_PATH}", *credentials, http_client=http)


@pytest.fixture
async def consumer(
    live_service: LiveService, credentials: tuple[str, str], http: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The example service with introspection credentials."""
    client_id, client_secret = credentials
    kit = AuthsvcKit.from_issuer(
        live_service.url,
        AUDIENCE,
        http_client=http,
        client_id=client_id,
        client_secret=client_secret,
    )
    transport = httpx.ASGITransport(app=create_app(kit))
    async with httpx.AsyncClient(transport=transport, base_url="http://consumer") as client:
        yield client


async def test_an_active_token_is_introspected_with_the_users_details(
    introspector: Introspector, service_client: httpx.AsyncClient, live_service: LiveService
) -> None:
    tokens = await register_and_sign_in(service_client, username="ada")
    me = (await service_client.get("/users/me", headers=bearer(tokens["access_token"]))).json()

    answer = await introspector.introspect(tokens["access_token"])

    assert answer["active"] is True
    assert answer.subject == me["id"]
    assert answer["email"] == "ada@example.com"
    assert answer["username"] == "ada"
    assert answer["iss"] == live_service.url
    assert answer["aud"] == AUDIENCE
    assert answer.client_id == "authsvc-web"


async def test_the_kit_reads_when_the_user_last_signed_in(
    introspector: Introspector, service_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)
    kit = AuthsvcKit.from_issuer(str(service_client.base_url), AUDIENCE, http_client=http)

    verified = await kit.verify(tokens["access_token"])
    answer = await introspector.introspect(tokens["access_token"])

    assert isinstance(verified.auth_time, int)
    assert abs(verified.auth_time - time.time()) < 60
    assert answer.auth_time == verified.auth_time


async def test_a_logged_out_token_still_verifies_locally_but_is_inactive(
    introspector: Introspector, service_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)
    kit = AuthsvcKit.from_issuer(str(service_client.base_url), AUDIENCE, http_client=http)
    logout = await service_client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    assert logout.status_code == 204

    assert (await kit.verify(tokens["access_token"])).subject
    with pytest.raises(InvalidToken, match="inactive"):
        await introspector.introspect(tokens["access_token"])


async def test_garbage_is_inactive(introspector: Introspector) -> None:
    with pytest.raises(InvalidToken, match="inactive"):
        await introspector.introspect("not-a-token")


async def test_a_refresh_token_is_not_taken_for_an_access_token(
    introspector: Introspector, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)

    with pytest.raises(InvalidToken, match="wrong_type"):
        await introspector.introspect(tokens["refresh_token"])


async def test_wrong_client_credentials_make_authsvc_unavailable_not_the_token_invalid(
    live_service: LiveService,
    credentials: tuple[str, str],
    service_client: httpx.AsyncClient,
    http: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(service_client)
    wrong = Introspector(
        f"{live_service.url}{INTROSPECT_PATH}", credentials[0], "wrong secret", http_client=http
    )

    with pytest.raises(AuthsvcUnavailable, match="401"):
        await wrong.introspect(tokens["access_token"])


async def test_a_client_without_the_introspect_scope_is_refused(
    live_service: LiveService,
    service_client: httpx.AsyncClient,
    admin: dict[str, str],
    http: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(service_client)
    client_id, client_secret = await create_client(service_client, admin, ["users:read"])
    introspector = Introspector(
        f"{live_service.url}{INTROSPECT_PATH}", client_id, client_secret, http_client=http
    )

    with pytest.raises(AuthsvcUnavailable):
        await introspector.introspect(tokens["access_token"])


async def test_discovery_finds_the_introspection_endpoint(
    live_service: LiveService,
    credentials: tuple[str, str],
    service_client: httpx.AsyncClient,
    http: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(service_client)
    client_id, client_secret = credentials

    kit = await AuthsvcKit.discover(
        live_service.url,
        AUDIENCE,
        http_client=http,
        client_id=client_id,
        client_secret=client_secret,
    )

    assert kit.introspector is not None
    assert kit.introspector.introspection_url == f"{live_service.url}{INTROSPECT_PATH}"
    assert (await kit.introspect(tokens["access_token"]))["active"] is True


async def test_the_revocation_sensitive_route_asks_authsvc_once_per_request(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient, counting: CountingTransport
) -> None:
    tokens = await register_and_sign_in(service_client)

    response = await consumer.post("/payments", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200, response.text
    assert counting.requests[INTROSPECT_PATH] == 1


async def test_after_logout_only_the_revocation_sensitive_route_refuses_the_token(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)
    headers = bearer(tokens["access_token"])
    await service_client.post("/auth/logout", headers=headers)

    locally = await consumer.get("/me", headers=headers)
    revocation_checked = await consumer.post("/payments", headers=headers)

    assert locally.status_code == 200  # local verification cannot know, until expiry
    assert revocation_checked.status_code == 401
    assert 'error_description="inactive"' in revocation_checked.headers["WWW-Authenticate"]


async def test_a_deactivated_users_token_is_refused_on_the_revocation_sensitive_route(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    tokens = await register_and_sign_in(service_client)
    me = (await service_client.get("/users/me", headers=bearer(tokens["access_token"]))).json()
    deactivated = await service_client.patch(
        f"/admin/users/{me['id']}", json={"is_active": False}, headers=admin
    )
    assert deactivated.status_code == 200, deactivated.text

    response = await consumer.post("/payments", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401


async def test_a_consumer_with_refused_credentials_answers_503(
    live_service: LiveService,
    credentials: tuple[str, str],
    service_client: httpx.AsyncClient,
    http: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(service_client)
    kit = AuthsvcKit.from_issuer(
        live_service.url, AUDIENCE, http_client=http, client_id=credentials[0], client_secret="x"
    )
    transport = httpx.ASGITransport(app=create_app(kit))
    async with httpx.AsyncClient(transport=transport, base_url="http://consumer") as consumer:
        response = await consumer.post("/payments", headers=bearer(tokens["access_token"]))

    assert response.status_code == 503


async def test_a_scope_the_user_lost_is_refused_on_a_revocation_checked_route(
    live_service: LiveService,
    credentials: tuple[str, str],
    http: httpx.AsyncClient,
    service_client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    kit = AuthsvcKit.from_issuer(live_service.url, AUDIENCE, http_client=http)
    checked = AuthsvcKit.from_issuer(
        live_service.url,
        AUDIENCE,
        http_client=http,
        client_id=credentials[0],
        client_secret=credentials[1],
    )
    # Dependencies as defaults: annotations of a function defined in a test cannot reach its
    # local variables (postponed evaluation).
    locally_verified = Depends(kit.authenticated(["users:read"]))
    revocation_checked = Depends(checked.authenticated(["users:read"], check_revocation=True))
    app = FastAPI()

    @app.get("/local")
    async def local(_: Claims = locally_verified) -> None:
        return None

    @app.get("/checked")
    async def checked_route(_: Claims = revocation_checked) -> None:
        return None

    token = await sign_in_holding(service_client, session_factory, "users:read")
    async with session_factory() as session:
        await take_back(session, "ada@example.com")  # no roles left, so no permission either

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://consumer") as consumer:
        headers = bearer(token["access_token"])
        assert (await consumer.get("/local", headers=headers)).status_code == 200  # until exp
        refused = await consumer.get("/checked", headers=headers)

    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
