"""Registrations are throttled per client IP."""

from __future__ import annotations

import httpx
import pytest

from tests.support.flows import PASSWORD


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_register_ip": "3/hour"}


@pytest.mark.usefixtures("app")
async def test_registrations_beyond_the_ip_limit_get_429(client: httpx.AsyncClient) -> None:
    for i in range(3):
        response = await client.post(
            "/auth/register", json={"email": f"u{i}@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201

    response = await client.post(
        "/auth/register", json={"email": "u9@example.com", "password": PASSWORD}
    )

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"] == "application/problem+json"
