"""Security headers on every response: successes, errors, 404s and unhandled errors."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.support.flows import bearer

BASELINE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def assert_hardened(response: httpx.Response) -> None:
    for name, value in BASELINE.items():
        assert response.headers.get(name) == value, name


async def test_success_carries_the_headers_and_is_not_cached(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")

    assert response.status_code == 200
    assert_hardened(response)
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers  # public_url is http


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/users/me", {}, 401),
        ("GET", "/users/me", {"headers": bearer("not-a-token")}, 401),
        ("GET", "/no/such/route", {}, 404),
        ("POST", "/auth/register", {"json": {"email": "nope"}}, 422),
        ("DELETE", "/health/live", {}, 405),
    ],
)
async def test_errors_carry_the_headers(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, object], status: int
) -> None:
    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert_hardened(response)
    assert response.headers["cache-control"] == "no-store"


async def test_domain_error_problem_carries_the_headers(client: httpx.AsyncClient) -> None:
    body = {"email": "ada@example.com", "password": "correct horse battery staple"}
    assert (await client.post("/auth/register", json=body)).status_code == 201

    duplicate = await client.post("/auth/register", json=body)

    assert duplicate.status_code == 409
    assert_hardened(duplicate)


async def test_unhandled_error_carries_the_headers(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/test-only/boom")

    assert response.status_code == 500
    assert "a bug" not in response.text
    assert_hardened(response)


async def test_public_documents_keep_their_own_cache_policy(client: httpx.AsyncClient) -> None:
    jwks = await client.get("/.well-known/jwks.json")
    discovery = await client.get("/.well-known/openid-configuration")

    for response in (jwks, discovery):
        assert response.status_code == 200
        assert response.headers["cache-control"].startswith("public, max-age=")
        assert_hardened(response)


async def test_token_response_keeps_no_store(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", data={"grant_type": "password"})

    assert response.headers["cache-control"] == "no-store"
    assert_hardened(response)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_docs_may_load_their_scripts(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline';" in policy
    assert "https:" not in policy  # every asset comes from the service itself
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"


class TestOverHttps:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"public_url": "https://auth.example.com"}

    async def test_hsts_is_sent_when_served_over_https(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/no/such/route")

        assert response.headers["strict-transport-security"] == (
            "max-age=63072000; includeSubDomains"
        )
