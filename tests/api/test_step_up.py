"""Step-up (RFC 9470) on a user's own sensitive operations: with two-step sign-in on, a new
password or a new email address needs a session that passed the second factor (`acr` aal2)
and began at most `max_age` seconds ago; a password session, a refresh of one, or a second
factor sign-in grown stale get a 401 challenge naming both. Users without a second factor
are not asked for one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.challenges import STEP_UP, bearer_challenge
from tests.support.flows import (
    PASSWORD,
    bearer,
    password_grant,
    refresh,
    register_and_sign_in,
)
from tests.support.mfa import Enrolled, enrol_totp, mfa_grant, mfa_token_for, sign_in_with_totp
from tests.support.state import FrozenClock

pytestmark = pytest.mark.usefixtures("app")

NEW_PASSWORD = "a brand new passphrase for ada"
NEW_EMAIL = "lovelace@example.com"


@dataclass(frozen=True, slots=True)
class Operation:
    """A sensitive change a user makes to their own account."""

    name: str
    perform: Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]
    done: int  # the status of a change that went through
    # Whether the change took effect, seen as the user sees it.
    took_effect: Callable[[httpx.AsyncClient, str], Awaitable[bool]]


async def change_password(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(access_token),
    )


async def new_password_works(client: httpx.AsyncClient, access_token: str) -> bool:
    """The new password is right (tokens, or the second step) and the old one wrong."""
    new = await password_grant(client, "ada@example.com", NEW_PASSWORD)
    old = await password_grant(client, "ada@example.com", PASSWORD)
    statuses = {new.status_code, old.status_code}
    assert statuses <= {200, 400, 403}, (new.text, old.text)
    assert (new.status_code == 400) != (old.status_code == 400), (new.text, old.text)
    return new.status_code != 400


async def change_email(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.patch(
        "/users/me",
        json={"email": NEW_EMAIL, "current_password": PASSWORD},
        headers=bearer(access_token),
    )


async def new_email_is_set(client: httpx.AsyncClient, access_token: str) -> bool:
    me = await client.get("/users/me", headers=bearer(access_token))
    assert me.status_code == 200, me.text
    email: str = me.json()["email"]
    assert email in ("ada@example.com", NEW_EMAIL)
    return email == NEW_EMAIL


OPERATIONS = [
    Operation("password change", change_password, 204, new_password_works),
    Operation("email change", change_email, 200, new_email_is_set),
]


@pytest.fixture(params=OPERATIONS, ids=[operation.name for operation in OPERATIONS])
def operation(request: pytest.FixtureRequest) -> Operation:
    chosen: Operation = request.param
    return chosen


async def with_mfa(
    client: httpx.AsyncClient, clock: FrozenClock
) -> tuple[dict[str, Any], Enrolled]:
    """Ada, signed in with her password (aal1), then enrolled: that session lives on."""
    tokens = await register_and_sign_in(client)
    return tokens, await enrol_totp(client, tokens["access_token"], at=clock.now)


async def test_a_password_session_of_a_user_with_mfa_gets_a_step_up_challenge(
    client: httpx.AsyncClient, clock: FrozenClock, operation: Operation
) -> None:
    tokens, _ = await with_mfa(client, clock)
    refreshed = (await refresh(client, tokens["refresh_token"])).json()

    for access_token in (tokens["access_token"], refreshed["access_token"]):
        response = await operation.perform(client, access_token)
        assert bearer_challenge(response) == STEP_UP, operation.name

    assert not await operation.took_effect(client, tokens["access_token"])


async def test_a_second_factor_sign_in_older_than_max_age_gets_a_step_up_challenge(
    client: httpx.AsyncClient, clock: FrozenClock, operation: Operation
) -> None:
    _, enrolled = await with_mfa(client, clock)
    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)

    clock.advance(seconds=301)
    stale = await operation.perform(client, strong["access_token"])
    # A refresh keeps the sign-in's time: it does not make the session recent again.
    refreshed = (await refresh(client, strong["refresh_token"])).json()
    stale_refreshed = await operation.perform(client, refreshed["access_token"])

    assert bearer_challenge(stale) == STEP_UP
    assert bearer_challenge(stale_refreshed) == STEP_UP
    assert not await operation.took_effect(client, strong["access_token"])


async def test_a_recent_second_factor_sign_in_makes_the_change(
    client: httpx.AsyncClient, clock: FrozenClock, operation: Operation
) -> None:
    _, enrolled = await with_mfa(client, clock)
    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)

    clock.advance(seconds=300)  # max_age to the second
    response = await operation.perform(client, strong["access_token"])

    assert response.status_code == operation.done, response.text
    assert await operation.took_effect(client, strong["access_token"])


async def test_a_recovery_code_sign_in_is_a_step_up_too(
    client: httpx.AsyncClient, clock: FrozenClock, operation: Operation
) -> None:
    _, enrolled = await with_mfa(client, clock)
    second = await mfa_grant(
        client, await mfa_token_for(client), recovery_code=enrolled.recovery_codes[0]
    )
    assert second.status_code == 200, second.text

    response = await operation.perform(client, second.json()["access_token"])

    assert response.status_code == operation.done, response.text


async def test_users_without_mfa_change_with_any_password_session(
    client: httpx.AsyncClient, clock: FrozenClock, operation: Operation
) -> None:
    tokens = await register_and_sign_in(client)
    started = await client.post("/users/me/mfa/totp", headers=bearer(tokens["access_token"]))
    assert started.status_code == 201  # pending: not a second factor yet
    clock.advance(minutes=20)  # long past max_age, and past the first access token's life
    later = (await refresh(client, tokens["refresh_token"])).json()

    response = await operation.perform(client, later["access_token"])

    assert response.status_code == operation.done, response.text
    assert "www-authenticate" not in response.headers
    assert await operation.took_effect(client, later["access_token"])


async def test_profile_changes_other_than_the_email_need_no_step_up(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens, _ = await with_mfa(client, clock)
    headers = bearer(tokens["access_token"])

    renamed = await client.patch("/users/me", json={"full_name": "Ada Lovelace"}, headers=headers)
    same_email = await client.patch(
        "/users/me",
        json={"email": "ADA@example.com", "current_password": PASSWORD},
        headers=headers,
    )

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["full_name"] == "Ada Lovelace"
    assert same_email.status_code == 200, same_email.text
    assert same_email.json()["email"] == "ada@example.com"
