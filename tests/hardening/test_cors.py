"""CORS: only the configured origins, with credentials; nothing when none is configured."""

from __future__ import annotations

import httpx
import pytest

FRONTEND = "https://app.example.com"


def preflight(origin: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


class TestConfigured:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"cors_origins": [FRONTEND]}

    async def test_preflight_from_a_configured_origin_is_allowed(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.options("/auth/token", headers=preflight(FRONTEND))

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == FRONTEND
        assert response.headers["access-control-allow-credentials"] == "true"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-request-id"} <= {
            header.strip() for header in allowed.split(",")
        }
        assert response.headers["x-content-type-options"] == "nosniff"

    async def test_preflight_from_another_origin_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.options("/auth/token", headers=preflight("https://evil.example"))

        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers

    async def test_simple_request_exposes_the_request_id(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live", headers={"Origin": FRONTEND})

        assert response.headers["access-control-allow-origin"] == FRONTEND
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()

    async def test_a_frontend_may_read_the_challenge_and_the_retry_hint(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/users/me", headers={"Origin": FRONTEND})

        assert response.status_code == 401
        exposed = {
            header.strip().lower()
            for header in response.headers["access-control-expose-headers"].split(",")
        }
        assert {"retry-after", "www-authenticate", "x-request-id"} <= exposed

    async def test_simple_request_from_another_origin_gets_no_cors_headers(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/health/live", headers={"Origin": "https://evil.example"})

        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


async def test_no_cors_headers_when_no_origin_is_configured(client: httpx.AsyncClient) -> None:
    response = await client.options("/auth/token", headers=preflight(FRONTEND))
    simple = await client.get("/health/live", headers={"Origin": FRONTEND})

    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers
