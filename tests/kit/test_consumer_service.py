"""The example consumer service (`examples/consumer_service.py`) protected by the kit: the
consumer runs in-process (ASGI), the kit talks to the live authsvc over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.security.access_tokens import AccessTokenCodec
from authsvc_kit import AuthsvcKit
from examples.consumer_service import create_app, kit_from_environment
from tests.kit.conftest import AUDIENCE
from tests.support.admins import sign_in_holding, take_back
from tests.support.flows import bearer, refresh, register_and_sign_in
from tests.support.live_server import LiveService


@pytest.fixture
async def consumer(
    live_service: LiveService, http: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The example service trusting the live authsvc, without introspection credentials."""
    kit = AuthsvcKit.from_issuer(live_service.url, AUDIENCE, http_client=http)
    transport = httpx.ASGITransport(app=create_app(kit))
    async with httpx.AsyncClient(transport=transport, base_url="http://consumer") as client:
        yield client


async def test_the_public_route_needs_no_token(consumer: httpx.AsyncClient) -> None:
    assert (await consumer.get("/public")).status_code == 200


async def test_a_protected_route_answers_the_callers_claims(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)
    me = (await service_client.get("/users/me", headers=bearer(tokens["access_token"]))).json()

    response = await consumer.get("/me", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200, response.text
    assert response.json()["sub"] == me["id"]
    assert response.json()["client_id"] == "authsvc-web"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWRhOnNlY3JldA=="}, {"Authorization": "Bearer"}],
)
async def test_no_bearer_token_is_401_with_a_bare_challenge(
    consumer: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await consumer.get("/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_an_access_token_in_the_query_string_is_ignored(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)

    response = await consumer.get("/me", params={"access_token": tokens["access_token"]})

    assert response.status_code == 401


async def test_an_invalid_token_is_401_invalid_token(consumer: httpx.AsyncClient) -> None:
    response = await consumer.get("/me", headers=bearer("not.a.token"))

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_an_expired_token_is_401_invalid_token(
    consumer: httpx.AsyncClient, live_service: LiveService
) -> None:
    codec = AccessTokenCodec(
        live_service.codec.keys,
        issuer=live_service.url,
        audience=AUDIENCE,
        ttl_seconds=900,
        clock=lambda: time.time() - 3600,
    )

    response = await consumer.get("/me", headers=bearer(codec.encode({"sub": "someone"})))

    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    assert 'error_description="expired"' in challenge


async def test_a_token_without_the_required_scope_is_403_insufficient_scope(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)

    response = await consumer.get("/reports", headers=bearer(tokens["access_token"]))

    assert response.status_code == 403
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="users:read"' in challenge


async def test_a_token_granted_the_required_scope_is_let_through(
    consumer: httpx.AsyncClient,
    service_client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    granted = await sign_in_holding(service_client, session_factory, "users:read")
    assert granted["scope"] == "users:read"

    response = await consumer.get("/reports", headers=bearer(granted["access_token"]))

    assert response.status_code == 200, response.text


async def test_a_token_refreshed_after_the_permission_was_taken_away_is_refused(
    consumer: httpx.AsyncClient,
    service_client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    granted = await sign_in_holding(service_client, session_factory, "users:read")
    async with session_factory() as session:
        await take_back(session, "ada@example.com")  # no roles left, so no permission either

    refreshed = await refresh(service_client, granted["refresh_token"])

    assert refreshed.status_code == 200, refreshed.text
    response = await consumer.get("/reports", headers=bearer(refreshed.json()["access_token"]))
    assert response.status_code == 403


async def test_the_revocation_sensitive_route_fails_closed_without_client_credentials(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)

    response = await consumer.post("/payments", headers=bearer(tokens["access_token"]))

    assert response.status_code == 503


async def test_the_step_up_route_asks_a_password_only_sign_in_for_a_second_factor(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client)

    response = await consumer.post("/transfers", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", error_description="a sign-in at aal2 '
        'is required", acr_values="aal2", max_age=300'
    )


async def test_the_step_up_route_lets_a_recent_second_factor_sign_in_through(
    consumer: httpx.AsyncClient, live_service: LiveService
) -> None:
    token = live_service.mint(acr="aal2", amr=["pwd", "otp"], auth_time=int(time.time()))

    response = await consumer.post("/transfers", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["amr"] == ["pwd", "otp"]


async def test_an_unreachable_authsvc_is_503_not_401(
    live_service: LiveService, consumer: httpx.AsyncClient
) -> None:
    token = live_service.mint()
    await live_service.stop()

    response = await consumer.get("/me", headers=bearer(token))

    assert response.status_code == 503


def test_the_example_reads_its_configuration_from_the_environment() -> None:
    kit = kit_from_environment(
        {
            "AUTHSVC_URL": "http://authsvc:8000",
            "AUTHSVC_ISSUER": "https://auth.example.com",
            "AUTHSVC_AUDIENCE": "billing",
            "AUTHSVC_CLIENT_ID": "client",
            "AUTHSVC_CLIENT_SECRET": "secret",
        }
    )

    assert kit.verifier.issuer == "https://auth.example.com"
    assert kit.verifier.audience == "billing"
    assert kit.jwks.jwks_url == "http://authsvc:8000/.well-known/jwks.json"
    assert kit.introspector is not None
    assert kit.introspector.introspection_url == "http://authsvc:8000/auth/introspect"
