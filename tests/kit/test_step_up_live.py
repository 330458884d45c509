"""Step-up end to end: a user enrols TOTP on the live authsvc, signs in with the password and
then the second factor (the MFA grant), and the example consumer service lets the resulting
aal2 token through its step-up route while it refuses an aal1 one with the RFC 9470 challenge.

Runs once authsvc serves `POST /users/me/mfa/totp` (the server side of MFA); skipped before.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import create_app as create_service
from authsvc_kit import AuthsvcKit, Claims
from authsvc_kit.fastapi import Authenticated
from examples.consumer_service import create_app
from tests.kit.conftest import AUDIENCE
from tests.support.admins import admin_headers
from tests.support.databases import make_settings
from tests.support.flows import bearer, password_grant, register_and_sign_in
from tests.support.live_server import LiveService

TOTP_ENROLMENT = "/users/me/mfa/totp"
MFA_GRANT = "urn:authsvc:params:oauth:grant-type:mfa"
EMAIL = "ada@example.com"
AAL1_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", error_description="a sign-in at aal2 '
    'is required", acr_values="aal2", max_age=300'
)


def _serves_totp_enrolment() -> bool:
    """Whether the service's routes include TOTP enrolment (an app is built, never started)."""
    service = create_service(make_settings("sqlite+aiosqlite://"))
    return TOTP_ENROLMENT in service.openapi()["paths"]


pytestmark = pytest.mark.skipif(
    not _serves_totp_enrolment(),
    reason=f"authsvc does not serve {TOTP_ENROLMENT} yet (multi-factor authentication)",
)


async def enrol_totp(service: httpx.AsyncClient, access_token: str) -> pyotp.TOTP:
    """Enrol and confirm TOTP with a fresh sign-in's token; the user's authenticator."""
    started = await service.post(TOTP_ENROLMENT, headers=bearer(access_token))
    assert started.status_code == 201, started.text
    authenticator = pyotp.TOTP(started.json()["secret"])
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/")

    confirmed = await service.post(
        f"{TOTP_ENROLMENT}/confirm",
        json={"code": authenticator.now()},
        headers=bearer(access_token),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    return authenticator


async def sign_in_with_second_factor(
    service: httpx.AsyncClient, authenticator: pyotp.TOTP
) -> dict[str, Any]:
    """Password grant (answered `mfa_required`), then the MFA grant; the token response."""
    challenged = await password_grant(service, EMAIL)
    assert challenged.status_code == 403, challenged.text
    assert challenged.json()["error"] == "mfa_required"

    # A code is accepted once, and the confirmation used the current step's: take the next
    # step's, which authsvc accepts (one step of drift either way) and was never used.
    code = authenticator.at(int(time.time()), counter_offset=1)
    response = await service.post(
        "/auth/token",
        data={
            "grant_type": MFA_GRANT,
            "mfa_token": challenged.json()["mfa_token"],
            "otp": code,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["refresh_token"]
    return body


def consumer_requiring(dependency: Authenticated) -> httpx.AsyncClient:
    """A consumer service of one route, `GET /strong`, behind `dependency`."""
    # A dependency as a default: annotations of a function defined in a test module cannot
    # reach its local variables (postponed evaluation).
    strong = Depends(dependency)
    app = FastAPI()

    @app.get("/strong")
    async def route(_: Claims = strong) -> None:
        return None

    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://consumer")


@pytest.fixture
async def consumer(
    live_service: LiveService, http: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The example service, whose `POST /transfers` needs aal2 within 300 s."""
    kit = AuthsvcKit.from_issuer(live_service.url, AUDIENCE, http_client=http)
    transport = httpx.ASGITransport(app=create_app(kit))
    async with httpx.AsyncClient(transport=transport, base_url="http://consumer") as client:
        yield client


async def test_a_second_factor_sign_in_passes_the_step_up_route_a_password_one_does_not(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    password_only = await register_and_sign_in(service_client, EMAIL)
    authenticator = await enrol_totp(service_client, password_only["access_token"])

    stepped_up = await sign_in_with_second_factor(service_client, authenticator)

    granted = await consumer.post("/transfers", headers=bearer(stepped_up["access_token"]))
    assert granted.status_code == 200, granted.text
    assert granted.json()["acr"] == "aal2"
    assert "otp" in granted.json()["amr"]
    refused = await consumer.post("/transfers", headers=bearer(password_only["access_token"]))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == AAL1_CHALLENGE


async def test_a_user_without_a_second_factor_is_asked_for_one(
    consumer: httpx.AsyncClient, service_client: httpx.AsyncClient
) -> None:
    tokens = await register_and_sign_in(service_client, "grace@example.com")

    mine = await consumer.get("/me", headers=bearer(tokens["access_token"]))
    refused = await consumer.post("/transfers", headers=bearer(tokens["access_token"]))

    assert mine.status_code == 200, mine.text
    assert mine.json()["acr"] == "aal1"
    assert mine.json()["amr"] == ["pwd"]
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == AAL1_CHALLENGE


async def test_introspection_reports_the_second_factor_to_a_revocation_checked_route(
    live_service: LiveService,
    service_client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> None:
    admin = await admin_headers(service_client, session_factory, superuser=True)
    created = await service_client.post(
        "/admin/clients", json={"name": "billing", "scopes": ["introspect"]}, headers=admin
    )
    assert created.status_code == 201, created.text
    kit = AuthsvcKit.from_issuer(
        live_service.url,
        AUDIENCE,
        http_client=http,
        client_id=created.json()["client_id"],
        client_secret=created.json()["client_secret"],
    )
    password_only = await register_and_sign_in(service_client, EMAIL)
    authenticator = await enrol_totp(service_client, password_only["access_token"])
    stepped_up = await sign_in_with_second_factor(service_client, authenticator)

    answer = await kit.introspect(stepped_up["access_token"])
    checked = kit.require_acr("aal2", max_age=300, check_revocation=True)
    claims = await kit.verify(stepped_up["access_token"])

    assert answer.acr == "aal2"
    assert "otp" in answer.amr
    assert answer.auth_time == claims.auth_time
    async with consumer_requiring(checked) as consumer:
        granted = await consumer.get("/strong", headers=bearer(stepped_up["access_token"]))
        refused = await consumer.get("/strong", headers=bearer(password_only["access_token"]))
    assert granted.status_code == 200, granted.text
    assert refused.status_code == 401  # aal1, or its session ended by the confirmation
