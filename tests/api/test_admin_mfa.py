"""Two-step sign-in as administrators see and manage it: whether a user has it on, the filter
on the user list, the reset for a user who lost their authenticator and their recovery codes
(audited, mailed, under the stronger-account rule), and the step-up an administrator with a
second factor needs to grant roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import RecoveryCode, TotpFactor
from tests.mail.smtp_server import SmtpServer, sending_to, smtp_server, text_part
from tests.support.admins import audit_events, grant
from tests.support.challenges import STEP_UP, bearer_challenge
from tests.support.flows import (
    assert_problem,
    bearer,
    password_grant,
    refresh,
    register,
    register_and_sign_in,
    sign_in,
    user_id,
)
from tests.support.mfa import Enrolled, enrol_totp, mfa_grant, mfa_token_for, sign_in_with_totp
from tests.support.outbox import delivered_mail
from tests.support.state import FrozenClock

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.usefixtures("app")

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, object]:
    return sending_to(smtp_server)


@dataclass(frozen=True, slots=True)
class Account:
    """A signed-in user: their tokens (from a password sign-in, aal1) and their id."""

    email: str
    tokens: dict[str, Any]
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens["access_token"])


async def account(
    client: httpx.AsyncClient,
    sessions: Sessions,
    email: str,
    *,
    superuser: bool = False,
    roles: tuple[str, ...] = (),
    permissions: tuple[str, ...] = (),
) -> Account:
    """Register `email`, give it power (`tests.support.admins.grant`), sign in with the
    password."""
    await register(client, email)
    if superuser or roles or permissions:
        async with sessions() as session:
            await grant(session, email, superuser=superuser, roles=roles, permissions=permissions)
    tokens = await sign_in(client, email)
    return Account(email, tokens, await user_id(client, bearer(tokens["access_token"])))


async def admin_view(client: httpx.AsyncClient, admin: Account, user: str) -> dict[str, Any]:
    response = await client.get(f"/admin/users/{user}", headers=admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def asks_for_a_second_factor(client: httpx.AsyncClient, email: str) -> bool:
    """Whether the right password of `email` earns an `mfa_required` challenge (rather than
    tokens)."""
    response = await password_grant(client, email)
    assert response.status_code in (200, 403), response.text
    return response.status_code == 403 and response.json()["error"] == "mfa_required"


async def stored_factors(sessions: Sessions, user: str) -> tuple[int, int]:
    """How many authenticators and recovery codes (used or not) the database holds for the
    user."""
    owner = uuid.UUID(user)
    async with sessions() as session:
        factors = await session.scalar(
            select(func.count()).select_from(TotpFactor).where(TotpFactor.user_id == owner)
        )
        codes = await session.scalar(
            select(func.count()).select_from(RecoveryCode).where(RecoveryCode.user_id == owner)
        )
    return int(factors or 0), int(codes or 0)


# --- what administrators see ---------------------------------------------------------------


async def test_the_admin_view_shows_mfa_on_only_once_the_authenticator_is_confirmed(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    root = await account(client, sessions, "root@example.com", superuser=True)
    ada = await account(client, sessions, "ada@example.com")
    assert (await admin_view(client, root, ada.id))["mfa_enabled"] is False

    started = await client.post("/users/me/mfa/totp", headers=ada.headers)
    assert started.status_code == 201
    assert (await admin_view(client, root, ada.id))["mfa_enabled"] is False  # still pending

    await enrol_totp(client, ada.tokens["access_token"], at=clock.now)

    assert (await admin_view(client, root, ada.id))["mfa_enabled"] is True
    listed = await client.get("/admin/users", params={"q": "ada@"}, headers=root.headers)
    assert [item["mfa_enabled"] for item in listed.json()["items"]] == [True]


async def test_the_user_list_filters_by_mfa_across_pages(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    root = await account(client, sessions, "root@example.com", superuser=True)
    with_mfa = {"u0@example.com", "u2@example.com", "u3@example.com", "u5@example.com"}
    for number in range(6):
        email = f"u{number}@example.com"
        tokens = await register_and_sign_in(client, email)
        if email in with_mfa:
            await enrol_totp(client, tokens["access_token"], at=clock.now)
        elif number == 1:  # a pending enrolment is not MFA
            started = await client.post(
                "/users/me/mfa/totp", headers=bearer(tokens["access_token"])
            )
            assert started.status_code == 201

    async def every_page(**params: Any) -> list[dict[str, Any]]:
        """The users of every page, two a page, walked with `next_cursor`."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await client.get(
                "/admin/users",
                params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})},
                headers=root.headers,
            )
            assert page.status_code == 200, page.text
            assert len(page.json()["items"]) <= 2
            items.extend(page.json()["items"])
            pages += 1
            cursor = page.json()["next_cursor"]
            if cursor is None:
                assert pages >= 2  # the filter holds across pages, not only on the first
                return items

    on = await every_page(mfa="true")
    off = await every_page(mfa="false")

    assert sorted(item["email"] for item in on) == sorted(with_mfa)
    assert all(item["mfa_enabled"] is True for item in on)
    everybody = {"root@example.com", *(f"u{number}@example.com" for number in range(6))}
    assert sorted(item["email"] for item in off) == sorted(everybody - with_mfa)
    assert all(item["mfa_enabled"] is False for item in off)
    assert len(await every_page()) == len(everybody)
    narrowed = await client.get(
        "/admin/users", params={"mfa": "true", "q": "u3@"}, headers=root.headers
    )
    assert [item["email"] for item in narrowed.json()["items"]] == ["u3@example.com"]
    garbage = await client.get("/admin/users", params={"mfa": "maybe"}, headers=root.headers)
    assert garbage.status_code == 422


# --- the reset -----------------------------------------------------------------------------


async def enrolled_user(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock, email: str, **power: Any
) -> tuple[Account, Enrolled]:
    user = await account(client, sessions, email, **power)
    return user, await enrol_totp(client, user.tokens["access_token"], at=clock.now)


async def test_after_a_reset_the_password_alone_signs_in_and_the_recovery_codes_are_gone(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    root = await account(client, sessions, "root@example.com", superuser=True)
    ada, enrolled = await enrolled_user(client, sessions, clock, "ada@example.com")
    assert await asks_for_a_second_factor(client, ada.email)

    response = await client.delete(f"/admin/users/{ada.id}/mfa", headers=root.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert not await asks_for_a_second_factor(client, ada.email)
    status = await client.get("/users/me/mfa", headers=ada.headers)
    assert status.json() == {"totp": False, "recovery_codes_remaining": 0}
    assert (await admin_view(client, root, ada.id))["mfa_enabled"] is False
    assert await stored_factors(sessions, ada.id) == (0, 0)
    # With a new authenticator, none of the old recovery codes signs in.
    clock.advance(seconds=30)
    await enrol_totp(client, (await sign_in(client, ada.email))["access_token"], at=clock.now)
    for code in enrolled.recovery_codes[:3]:
        old = await mfa_grant(client, await mfa_token_for(client), recovery_code=code)
        assert old.status_code == 400, code
        assert old.json()["error"] == "invalid_grant"


async def test_a_reset_is_audited_with_the_admin_as_actor_and_mailed_to_the_owner(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    manager = await account(client, sessions, "manager@example.com", permissions=("users:write",))
    ada, enrolled = await enrolled_user(client, sessions, clock, "ada@example.com")
    await delivered_mail(sessions, smtp_server)  # the notice that MFA was turned on

    response = await client.delete(f"/admin/users/{ada.id}/mfa", headers=manager.headers)

    assert response.status_code == 204
    [event] = await audit_events(sessions, "mfa.reset")
    assert str(event.user_id) == ada.id
    assert str(event.actor_id) == manager.id
    [mail] = await delivered_mail(sessions, smtp_server)
    assert mail["To"] == ada.email
    assert mail["Subject"] == "Two-step sign-in was turned off"
    body = text_part(mail)
    assert "by an administrator" in body
    assert enrolled.secret not in mail.as_string()
    assert not any(code in mail.as_string() for code in enrolled.recovery_codes)


async def test_resetting_a_user_without_a_second_factor_is_404_and_audits_nothing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await account(client, sessions, "root@example.com", superuser=True)
    ada = await account(client, sessions, "ada@example.com")

    without = await client.delete(f"/admin/users/{ada.id}/mfa", headers=root.headers)
    nobody = await client.delete(f"/admin/users/{uuid.uuid4()}/mfa", headers=root.headers)

    assert_problem(without, 404)
    assert_problem(nobody, 404)
    assert await audit_events(sessions, "mfa.reset") == []


async def test_an_admin_without_users_write_cannot_reset(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    reader = await account(client, sessions, "reader@example.com", permissions=("users:read",))
    ada, _ = await enrolled_user(client, sessions, clock, "ada@example.com")

    response = await client.delete(f"/admin/users/{ada.id}/mfa", headers=reader.headers)

    assert_problem(response, 403)
    assert "users:write" in response.json()["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert await asks_for_a_second_factor(client, ada.email)
    assert await stored_factors(sessions, ada.id) == (1, 10)
    assert await audit_events(sessions, "mfa.reset") == []


async def test_nobody_resets_the_mfa_of_an_account_stronger_than_their_own(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    manager = await account(client, sessions, "manager@example.com", permissions=("users:write",))
    root, _ = await enrolled_user(client, sessions, clock, "root@example.com", superuser=True)
    admin, _ = await enrolled_user(client, sessions, clock, "admin@example.com", roles=("admin",))
    peer, _ = await enrolled_user(
        client, sessions, clock, "peer@example.com", permissions=("users:write",)
    )

    for stronger in (root, admin):
        refused = await client.delete(f"/admin/users/{stronger.id}/mfa", headers=manager.headers)
        assert_problem(refused, 403)
        assert await asks_for_a_second_factor(client, stronger.email), stronger.email
        assert await stored_factors(sessions, stronger.id) == (1, 10)
    assert await audit_events(sessions, "mfa.reset") == []
    # An equal may be reset, and a superuser resets anyone.
    assert (
        await client.delete(f"/admin/users/{peer.id}/mfa", headers=manager.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/admin/users/{admin.id}/mfa", headers=root.headers)
    ).status_code == 204
    assert not await asks_for_a_second_factor(client, peer.email)
    assert not await asks_for_a_second_factor(client, admin.email)


# --- role grants need a step-up from an administrator with a second factor ------------------


async def put_roles(
    client: httpx.AsyncClient, access_token: str, user: str, roles: list[str]
) -> httpx.Response:
    return await client.put(
        f"/admin/users/{user}/roles", json={"roles": roles}, headers=bearer(access_token)
    )


async def test_an_admin_with_mfa_signed_in_at_aal1_cannot_grant_roles(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    # Root's password session began before the authenticator was confirmed, and lives on.
    root, _ = await enrolled_user(client, sessions, clock, "root@example.com", superuser=True)
    ada = await account(client, sessions, "ada@example.com")
    refreshed = await refresh(client, root.tokens["refresh_token"])
    assert refreshed.status_code == 200

    for token in (root.tokens["access_token"], refreshed.json()["access_token"]):
        response = await put_roles(client, token, ada.id, ["admin"])
        assert bearer_challenge(response) == STEP_UP

    assert (await admin_view(client, root, ada.id))["roles"] == []
    assert await audit_events(sessions, "user.roles_changed") == []


async def test_an_admin_with_mfa_grants_roles_within_max_age_of_a_second_factor_sign_in(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    root, enrolled = await enrolled_user(
        client, sessions, clock, "root@example.com", superuser=True
    )
    ada = await account(client, sessions, "ada@example.com")
    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, root.email, at=clock.now)

    clock.advance(seconds=300)  # max_age to the second
    granted = await put_roles(client, strong["access_token"], ada.id, ["admin"])
    assert granted.status_code == 200, granted.text
    assert granted.json()["roles"] == ["admin"]

    clock.advance(seconds=1)
    stale = await put_roles(client, strong["access_token"], ada.id, [])
    assert bearer_challenge(stale) == STEP_UP
    refreshed = await refresh(client, strong["refresh_token"])  # keeps auth_time
    assert (
        bearer_challenge(await put_roles(client, refreshed.json()["access_token"], ada.id, []))
        == STEP_UP
    )
    assert (await admin_view(client, root, ada.id))["roles"] == ["admin"]


async def test_an_admin_without_mfa_grants_roles_from_any_password_session(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    root = await account(client, sessions, "root@example.com", superuser=True)
    ada = await account(client, sessions, "ada@example.com")
    started = await client.post("/users/me/mfa/totp", headers=root.headers)
    assert started.status_code == 201  # pending: not a second factor yet
    clock.advance(minutes=20)  # long past max_age, and past the first access token's life
    later = await refresh(client, root.tokens["refresh_token"])

    response = await put_roles(client, later.json()["access_token"], ada.id, ["admin"])

    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["admin"]
