"""GET /metrics: request latency by route template and the auth counters."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.observability import install_observability
from app.runtime import runtime_of
from tests.observability.conftest import JsonLines
from tests.support.admins import admin_headers, register_client
from tests.support.flows import basic, password_grant, refresh, register, register_and_sign_in
from tests.support.state import FrozenClock

WRONG = "definitely the wrong password"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"refresh_reuse_grace_seconds": 0, "rate_limit_login_account": "2/15 minutes"}


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.usefixtures("app")
async def test_latency_is_labelled_by_route_template_not_raw_path(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await admin_headers(client, sessions, superuser=True)
    me = await client.get("/users/me", headers=headers)
    await client.get(f"/admin/users/{me.json()['id']}", headers=headers)
    await client.get("/no/such/route")

    samples = await scrape(client)

    count = "authsvc_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/admin/users/{user_id}", status="200") == 1
    assert value(samples, count, method="GET", route="unmatched", status="404") == 1
    assert value(samples, count, method="POST", route="/auth/token", status="200") == 1
    assert not any(me.json()["id"] in str(labels) for _, labels in samples)


async def test_metrics_are_not_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    assert "/metrics" not in schema["paths"]


async def test_each_app_has_its_own_registry(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    other = create_app(settings)
    other_metrics = install_observability(other, settings)  # no duplicate-registration error

    await register_and_sign_in(client)

    assert other_metrics.registry is not runtime_of(app).metrics.registry
    assert other_metrics.logins.labels(result="ok")._value.get() == 0
    assert value(await scrape(client), "authsvc_logins_total", result="ok") == 1


@pytest.mark.usefixtures("app")
async def test_successful_and_failed_logins_are_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert value(before, "authsvc_logins_total", result="ok") == 0  # present from the start
    await register_and_sign_in(client)
    await password_grant(client, "ada@example.com", WRONG)
    await password_grant(client, "nobody@example.com", WRONG)

    samples = await scrape(client)

    assert value(samples, "authsvc_logins_total", result="ok") == 1
    assert value(samples, "authsvc_logins_total", result="failed") == 2
    assert value(samples, "authsvc_tokens_issued_total", grant="password") == 1


@pytest.mark.usefixtures("app")
async def test_refresh_and_refresh_token_reuse_are_counted(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await register_and_sign_in(client)
    assert (await refresh(client, first["refresh_token"])).status_code == 200
    clock.advance(seconds=1)

    replay = await refresh(client, first["refresh_token"])

    assert replay.status_code == 400
    samples = await scrape(client)
    assert value(samples, "authsvc_tokens_issued_total", grant="refresh_token") == 1
    assert value(samples, "authsvc_refresh_token_reuse_total") == 1


@pytest.mark.usefixtures("app")
async def test_throttled_requests_are_counted_by_limit(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    for _ in range(2):
        await password_grant(client, "ada@example.com", WRONG)

    response = await password_grant(client, "ada@example.com")

    assert response.status_code == 429
    samples = await scrape(client)
    assert value(samples, "authsvc_throttled_total", limit="login_account") == 1
    assert value(samples, "authsvc_logins_total", result="ok") == 0


@pytest.mark.usefixtures("app")
async def test_client_credentials_tokens_are_counted(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    client_id, secret = await register_client(client, root, scopes=["introspect"])

    response = await client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )

    assert response.status_code == 200, response.text
    samples = await scrape(client)
    assert value(samples, "authsvc_tokens_issued_total", grant="client_credentials") == 1


async def test_an_unhandled_error_is_timed_as_a_500(app: FastAPI, json_logs: JsonLines) -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom/{item_id}", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/boom/1")
        samples = await scrape(client)

    assert response.status_code == 500
    count = "authsvc_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/boom/{item_id}", status="500") == 1
    [access] = [line for line in json_logs.records() if line.get("path") == "/boom/1"]
    assert access["status"] == 500
    assert "request_id" in access
