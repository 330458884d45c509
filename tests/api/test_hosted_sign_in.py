"""The hosted sign-in page: the second step for accounts with an authenticator, and the same
limits as the token endpoint's password and MFA grants (parallel attempts, many addresses)."""

from __future__ import annotations

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.attempts import client_at, count_events, in_parallel
from tests.support.authorization import (
    RelyingParty,
    authorize,
    hidden_fields,
    location,
    redeem,
    register_relying_party,
    sign_in_on_page,
)
from tests.support.flows import register, sign_in
from tests.support.mfa import Enrolled, enrol_totp, mfa_grant

WRONG = "definitely the wrong password"


@pytest.fixture
async def rp(client: httpx.AsyncClient, root: dict[str, str]) -> RelyingParty:
    return await register_relying_party(client, root, public=True, first_party=True)


@pytest.fixture
async def enrolled(client: httpx.AsyncClient) -> Enrolled:
    await register(client, "ada@example.com")
    return await enrol_totp(client, (await sign_in(client, "ada@example.com"))["access_token"])


async def second_step_page(client: httpx.AsyncClient, rp: RelyingParty) -> httpx.Response:
    """The page after the right password of an account with an authenticator."""
    started = await authorize(client, rp)
    page = await sign_in_on_page(client, location(started))
    assert page.status_code == 200, page.text
    assert 'name="otp"' in page.text
    return page


async def answer(client: httpx.AsyncClient, page: httpx.Response, **code: str) -> httpx.Response:
    return await client.post("/login", data={**hidden_fields(page), **code})


async def test_an_account_with_an_authenticator_signs_in_with_both_steps_at_aal2(
    client: httpx.AsyncClient, enrolled: Enrolled, rp: RelyingParty
) -> None:
    page = await second_step_page(client, rp)

    done = await answer(client, page, otp=enrolled.code(steps=1))  # enrolment used this one
    back = await client.get(location(done))
    code = dict(httpx.URL(location(back)).params)["code"]
    tokens = (await redeem(client, rp, code)).json()

    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["acr"] == "aal2"
    assert claims["amr"] == ["pwd", "otp"]
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert id_claims["acr"] == "aal2"


async def test_a_recovery_code_finishes_the_second_step(
    client: httpx.AsyncClient, enrolled: Enrolled, rp: RelyingParty
) -> None:
    page = await second_step_page(client, rp)

    done = await answer(client, page, recovery_code=enrolled.recovery_codes[0])

    assert location(done).startswith("/oauth/authorize?")


async def test_a_wrong_code_shows_the_step_again_and_five_void_it(
    client: httpx.AsyncClient, enrolled: Enrolled, rp: RelyingParty
) -> None:
    page = await second_step_page(client, rp)
    wrong = "000000" if enrolled.code() != "000000" else "111111"

    first = await answer(client, page, otp=wrong)
    assert first.status_code == 400
    assert 'role="alert"' in first.text
    for _ in range(4):
        await answer(client, page, otp=wrong)
    after_five = await answer(client, page, otp=enrolled.code(steps=1))

    assert after_five.status_code == 400
    assert 'name="password"' in after_five.text  # back to the password: the token is void


async def test_the_pages_mfa_token_is_not_accepted_at_the_token_endpoint(
    client: httpx.AsyncClient, enrolled: Enrolled, rp: RelyingParty
) -> None:
    page = await second_step_page(client, rp)

    response = await mfa_grant(client, hidden_fields(page)["mfa_token"], otp=enrolled.code())

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


class TestLimits:
    """With small limits: 3 failures per account and address, 5 per account."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {
            "rate_limit_login_account_ip": "3/15 minutes",
            "rate_limit_login_account": "5/15 minutes",
            "rate_limit_login_ip": "20/15 minutes",
        }

    async def test_the_sign_in_page_counts_failures_like_the_password_grant(
        self, client: httpx.AsyncClient
    ) -> None:
        await register(client, "ada@example.com")
        for _ in range(3):
            refused = await sign_in_on_page(client, password=WRONG)
            assert refused.status_code == 400
            assert "Invalid username or password" in refused.text

        locked = await sign_in_on_page(client)  # even the right password

        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert "authsvc_session" not in locked.headers.get("set-cookie", "")

    async def test_fifty_parallel_wrong_passwords_on_the_page_are_evaluated_at_most_the_limit(
        self, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        await register(client, "ada@example.com")
        page = await client.get("/login")
        fields = hidden_fields(page)

        async def attempt(_: int) -> httpx.Response:
            return await client.post(
                "/login", data={**fields, "username": "ada@example.com", "password": WRONG}
            )

        counted = await in_parallel(50, attempt)

        assert counted.get(400, 0) <= 3
        assert counted.get(429, 0) >= 47
        assert await count_events(sessions) <= 3

    async def test_many_addresses_are_held_by_the_account_wide_limit(
        self, app: FastAPI, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        await register(client, "ada@example.com")

        async def attempt(i: int) -> httpx.Response:
            async with client_at(app, f"203.0.113.{i + 1}") as elsewhere:
                return await sign_in_on_page(elsewhere, password=WRONG)

        counted = await in_parallel(20, attempt)

        assert counted.get(400, 0) <= 5
        assert await count_events(sessions) <= 5
