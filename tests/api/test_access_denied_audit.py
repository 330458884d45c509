"""Refused calls to admin routes leave an `access.denied` trace, within a bounded budget."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent
from app.repositories import AuditEventRepository
from tests.support.admins import admin_headers
from tests.support.flows import bearer, register_and_sign_in, user_id


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """Per test, through indirect parametrization."""
    overrides: dict[str, object] = getattr(request, "param", {})
    return overrides


async def denials(sessions: async_sessionmaker[AsyncSession]) -> list[AuditEvent]:
    async with sessions() as session:
        return await AuditEventRepository(session).list_by(type="access.denied")


async def test_a_user_without_the_permission_is_refused_and_recorded_by_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tokens = await register_and_sign_in(client, "mallory@example.com")
    headers = bearer(tokens["access_token"])
    mallory = await user_id(client, headers)

    response = await client.get("/admin/users", headers={**headers, "User-Agent": "probe/1"})

    assert response.status_code == 403
    [event] = await denials(sessions)
    assert str(event.actor_id) == mallory
    assert event.user_id is None
    assert event.ip == "127.0.0.1"
    assert event.user_agent == "probe/1"
    assert event.details == {
        "reason": "missing_permission",
        "method": "GET",
        "route": "/admin/users",
        "missing": ["users:read"],
    }


async def test_a_call_without_a_token_is_recorded_with_no_actor_and_the_route_template(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.delete("/admin/users/0193b1a2-0000-7000-8000-000000000000")

    assert response.status_code == 401
    [event] = await denials(sessions)
    assert event.actor_id is None
    assert event.ip == "127.0.0.1"
    assert event.details == {
        "reason": "no_token",
        "method": "DELETE",
        "route": "/admin/users/{user_id}",
    }


async def test_a_forged_token_is_recorded_as_invalid(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.get("/admin/audit-events", headers=bearer("not.a.jwt"))

    assert response.status_code == 401
    [event] = await denials(sessions)
    assert event.actor_id is None
    assert event.details["reason"] == "invalid_token"


async def test_allowed_calls_leave_no_denial(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_headers(client, sessions, permissions=["users:read"])

    assert (await client.get("/admin/users", headers=admin)).status_code == 200
    assert await denials(sessions) == []


@pytest.mark.parametrize(
    "settings_overrides", [{"audit_access_denied_ip": "7/minute"}], indirect=True
)
async def test_a_flood_of_anonymous_denied_calls_records_at_most_the_per_ip_budget(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    responses = await asyncio.gather(*(client.get("/admin/users") for _ in range(50)))

    assert [r.status_code for r in responses] == [401] * 50  # still refused, never 429
    assert len(await denials(sessions)) == 7


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "trusted_proxies": ["127.0.0.1"],
            "audit_access_denied_ip": "10/minute",
            "audit_access_denied_total": "20/minute",
        }
    ],
    indirect=True,
)
async def test_a_flood_from_many_addresses_records_at_most_the_total_budget(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    responses = await asyncio.gather(
        *(
            client.get("/admin/roles", headers={"X-Forwarded-For": f"198.51.100.{n}"})
            for n in range(50)
        )
    )

    assert {r.status_code for r in responses} == {401}
    recorded = await denials(sessions)
    assert len(recorded) == 20
    assert len({event.ip for event in recorded}) == 20
