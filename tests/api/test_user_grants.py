"""`/users/me/grants`: what the user granted third-party clients on the consent page, and
taking it back."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.admins import audit_events
from tests.support.authorization import (
    RelyingParty,
    authorize,
    register_relying_party,
    tokens_for,
)
from tests.support.flows import bearer, register, sign_in


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> dict[str, str]:
    await register(client, "ada@example.com")
    return bearer((await sign_in(client, "ada@example.com"))["access_token"])


@pytest.fixture
async def printer(client: httpx.AsyncClient, root: dict[str, str]) -> RelyingParty:
    return await register_relying_party(client, root)


async def test_a_consented_client_is_listed_with_its_scopes(
    client: httpx.AsyncClient, ada: dict[str, str], printer: RelyingParty
) -> None:
    await tokens_for(client, printer, scope="openid email")

    listed = (await client.get("/users/me/grants", headers=ada)).json()

    assert [(grant["client_id"], grant["client_name"]) for grant in listed] == [
        (printer.client_id, "Photo Printer")
    ]
    assert listed[0]["scopes"] == ["email", "openid"]
    assert listed[0]["granted_at"]


async def test_a_first_party_client_needs_no_grant(
    client: httpx.AsyncClient, ada: dict[str, str], root: dict[str, str]
) -> None:
    own_app = await register_relying_party(client, root, public=True, first_party=True)
    await tokens_for(client, own_app)

    assert (await client.get("/users/me/grants", headers=ada)).json() == []


async def test_revoking_a_grant_ends_the_clients_tokens_and_asks_consent_again(
    client: httpx.AsyncClient,
    ada: dict[str, str],
    printer: RelyingParty,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tokens = await tokens_for(client, printer, scope="openid offline_access")

    revoked = await client.delete(f"/users/me/grants/{printer.client_id}", headers=ada)

    assert revoked.status_code == 204
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=httpx.BasicAuth(printer.client_id, printer.client_secret or ""),
    )
    assert refreshed.status_code == 400
    assert (await client.get("/users/me", headers=ada)).status_code == 200  # other sessions live
    again = await authorize(client, printer)
    assert 'name="decision"' in again.text  # the consent page, not a code
    assert (await client.get("/users/me/grants", headers=ada)).json() == []
    [event] = await audit_events(sessions, "grant.revoked")
    assert event.details["client_id"] == printer.client_id


async def test_revoking_a_grant_that_does_not_exist_is_404(
    client: httpx.AsyncClient, ada: dict[str, str], printer: RelyingParty
) -> None:
    response = await client.delete(f"/users/me/grants/{printer.client_id}", headers=ada)

    assert response.status_code == 404


async def test_one_user_cannot_see_or_revoke_another_users_grant(
    client: httpx.AsyncClient, ada: dict[str, str], printer: RelyingParty
) -> None:
    await tokens_for(client, printer)
    await register(client, "mallory@example.com")
    mallory = bearer((await sign_in(client, "mallory@example.com"))["access_token"])

    assert (await client.get("/users/me/grants", headers=mallory)).json() == []
    stolen = await client.delete(f"/users/me/grants/{printer.client_id}", headers=mallory)
    assert stolen.status_code == 404
    assert len((await client.get("/users/me/grants", headers=ada)).json()) == 1


async def test_the_grants_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    assert (await client.get("/users/me/grants")).status_code == 401
