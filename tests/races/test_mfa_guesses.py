"""Second-factor codes guessed and replayed in parallel bursts at the live server (issue 17):
a wrong code is a failed sign-in under the reservation limits, five void the `mfa_token`, and a
TOTP or recovery code signs in once however many requests present it at the same moment."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

import httpx
import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import AuditEvent
from app.runtime import install_runtime, runtime_of
from tests.races.conftest import burst, scalar
from tests.support.flows import PASSWORD, password_grant, register_and_sign_in
from tests.support.live_server import LiveService
from tests.support.mfa import MFA_GRANT, Enrolled, enrol_totp, mfa_grant, mfa_token_for
from tests.support.state import FrozenClock

BURST = 50
ADA_EMAIL = "ada@example.com"
# Limits that bind in these tests (the defaults but for what each test names).
LIMITS = {
    "rate_limit_enabled": True,
    "rate_limit_login_account_ip": "10/15 minutes",
    "rate_limit_login_account": "100/hour",
    "rate_limit_login_ip": "100/15 minutes",
    # Requests from the test itself (127.0.0.1) may say whom they forward for.
    "trusted_proxies": ["127.0.0.1"],
}
# A burst's requests queue for the pool on a busy machine; waiting is not what is tested.
PATIENT_POOL = {"db_pool_timeout_seconds": 30.0, "db_command_timeout_seconds": 30.0}


@pytest.fixture
async def wide(live_service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a connection for every request of a burst."""
    limits = httpx.Limits(max_connections=BURST + 10, max_keepalive_connections=BURST + 10)
    async with httpx.AsyncClient(base_url=live_service.url, limits=limits, timeout=60) as client:
        yield client


@pytest.fixture
def clock(live_service: LiveService) -> FrozenClock:
    """The live service's clock, moved by hand: codes are computed for the time it shows."""
    clock = FrozenClock()
    runtime = runtime_of(live_service.app)
    install_runtime(live_service.app, replace(runtime, clock=clock))
    return clock


async def enrolled_ada(client: httpx.AsyncClient, clock: FrozenClock) -> Enrolled:
    """Ada with a confirmed authenticator; the clock a step on, so its code is unused."""
    tokens = await register_and_sign_in(client, ADA_EMAIL)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    return enrolled


def wrong_codes(enrolled: Enrolled, clock: FrozenClock, count: int) -> list[str]:
    """`count` different six-digit codes, none of which the service would accept now."""
    accepted = {enrolled.code(clock.now, steps=steps) for steps in (-1, 0, 1)}
    candidates = (f"{n:06d}" for n in range(count + len(accepted)))
    return [code for code in candidates if code not in accepted][:count]


def from_address(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def failed_checks(engine: AsyncEngine) -> Counter[str]:
    """Evaluated wrong answers, by what was checked (`otp`, `rc`, ...)."""
    async with engine.connect() as connection:
        events = await connection.execute(
            select(AuditEvent.details).where(AuditEvent.type == "login.failed")
        )
        return Counter(str(details.get("check")) for (details,) in events)


def assert_refusals(responses: list[httpx.Response]) -> Counter[int]:
    """No answer issued tokens; each is `invalid_grant` or a 429 saying when to come back.
    How many of each status."""
    for response in responses:
        assert "access_token" not in response.text
        if response.status_code == 429:
            assert response.json()["error"] == "temporarily_unavailable"
            assert int(response.headers["retry-after"]) > 0
        else:
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "invalid_grant"
    return Counter(response.status_code for response in responses)


async def mfa_tokens_for(client: httpx.AsyncClient, count: int) -> list[str]:
    """`count` challenges opened at once by Ada's right password: their `mfa_token`s."""
    responses = await burst(partial(password_grant, client, ADA_EMAIL) for _ in range(count))
    assert {response.status_code for response in responses} == {403}
    return [response.json()["mfa_token"] for response in responses]


async def live_sessions(engine: AsyncEngine) -> int:
    return int(await scalar(engine, "SELECT count(*) FROM sessions WHERE revoked_at IS NULL"))


class TestParallelGuessesOnOneToken:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {**LIMITS, **PATIENT_POOL}

    async def test_50_parallel_wrong_codes_void_the_mfa_token_after_five(
        self, wide: httpx.AsyncClient, engine: AsyncEngine, clock: FrozenClock
    ) -> None:
        enrolled = await enrolled_ada(wide, clock)
        mfa_token = await mfa_token_for(wide)
        sessions_before = await live_sessions(engine)

        responses = await burst(
            partial(mfa_grant, wide, mfa_token, otp=code)
            for code in wrong_codes(enrolled, clock, BURST)
        )

        counted = assert_refusals(responses)
        # Exactly the fifth wrong code voided the token; no more were ever checked. (An
        # attempt that meets the void token checks nothing and gives its slot back, so how
        # many 400s get past the reservations beside the five depends on timing.)
        assert await failed_checks(engine) == {"otp": 5}
        assert counted[400] >= 5
        assert counted[429] == BURST - counted[400]
        right = await mfa_grant(wide, mfa_token, otp=enrolled.code(clock.now))
        assert right.status_code == 400, right.text
        assert right.json()["error"] == "invalid_grant"
        assert await live_sessions(engine) == sessions_before


class TestParallelGuessesUnderALowerAddressLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        # A limit below the token's five: the reservations, not the token, stop the burst.
        return {**LIMITS, **PATIENT_POOL, "rate_limit_login_account_ip": "3/15 minutes"}

    async def test_parallel_wrong_codes_evaluate_no_more_than_the_address_limit(
        self, wide: httpx.AsyncClient, engine: AsyncEngine, clock: FrozenClock
    ) -> None:
        enrolled = await enrolled_ada(wide, clock)
        mfa_token = await mfa_token_for(wide)

        responses = await burst(
            partial(mfa_grant, wide, mfa_token, otp=code)
            for code in wrong_codes(enrolled, clock, BURST)
        )

        assert assert_refusals(responses) == {400: 3, 429: BURST - 3}
        assert await failed_checks(engine) == {"otp": 3}
        # The guesser's address is shut out, right password and right code alike ...
        assert (await password_grant(wide, ADA_EMAIL)).status_code == 429
        assert (await mfa_grant(wide, mfa_token, otp=enrolled.code(clock.now))).status_code == 429
        # ... while the owner elsewhere finishes with the same token (three wrong codes are
        # fewer than five).
        owner = await wide.post(
            "/auth/token",
            data={
                "grant_type": MFA_GRANT,
                "mfa_token": mfa_token,
                "otp": enrolled.code(clock.now),
            },
            headers=from_address("198.51.100.7"),
        )
        assert owner.status_code == 200, owner.text


class TestGuessesFromManyAddresses:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {**LIMITS, **PATIENT_POOL, "rate_limit_login_account": "8/hour"}

    async def test_guesses_from_50_addresses_are_bounded_by_the_account_wide_limit(
        self, wide: httpx.AsyncClient, engine: AsyncEngine, clock: FrozenClock
    ) -> None:
        enrolled = await enrolled_ada(wide, clock)
        # Someone who knows the password opens many challenges, and spreads the guesses so
        # that no token reaches its five and no address guesses twice.
        # (One by one: in flight at once, they would take more slots than the account has.)
        mfa_tokens = [await mfa_token_for(wide) for _ in range(13)]
        guesses = wrong_codes(enrolled, clock, BURST)

        responses = await burst(
            partial(
                wide.post,
                "/auth/token",
                data={
                    "grant_type": MFA_GRANT,
                    "mfa_token": mfa_tokens[n % len(mfa_tokens)],
                    "otp": guesses[n],
                },
                headers=from_address(f"203.0.113.{n + 1}"),
            )
            for n in range(BURST)
        )

        assert assert_refusals(responses) == {400: 8, 429: BURST - 8}
        assert await failed_checks(engine) == {"otp": 8}
        # The account's budget is spent from everywhere, for the password as for the codes.
        elsewhere = from_address("198.51.100.200")
        password = await wide.post(
            "/auth/token",
            data={"grant_type": "password", "username": ADA_EMAIL, "password": PASSWORD},
            headers=elsewhere,
        )
        assert password.status_code == 429, password.text


class TestOneCodeOnManyTokens:
    """Rate limits off (the races' default): throttling would answer 429 before the race."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"rate_limit_enabled": False, **PATIENT_POOL}

    async def test_one_totp_code_on_50_tokens_at_once_signs_in_once(
        self, wide: httpx.AsyncClient, engine: AsyncEngine, clock: FrozenClock
    ) -> None:
        enrolled = await enrolled_ada(wide, clock)
        mfa_tokens = await mfa_tokens_for(wide, BURST)
        code = enrolled.code(clock.now)
        sessions_before = await live_sessions(engine)

        responses = await burst(partial(mfa_grant, wide, token, otp=code) for token in mfa_tokens)

        [won] = [r for r in responses if r.status_code == 200]
        assert assert_refusals([r for r in responses if r is not won]) == {400: BURST - 1}
        claims = jwt.decode(won.json()["access_token"], options={"verify_signature": False})
        assert (claims["amr"], claims["acr"]) == (["pwd", "otp"], "aal2")
        assert await live_sessions(engine) == sessions_before + 1
        assert await failed_checks(engine) == {"otp": BURST - 1}
        # Replayed later inside its window, on a fresh token: still refused.
        clock.advance(seconds=10)
        replay = await mfa_grant(wide, await mfa_token_for(wide), otp=code)
        assert replay.status_code == 400, replay.text

    async def test_one_recovery_code_on_50_tokens_at_once_signs_in_once(
        self, wide: httpx.AsyncClient, engine: AsyncEngine, clock: FrozenClock
    ) -> None:
        enrolled = await enrolled_ada(wide, clock)
        mfa_tokens = await mfa_tokens_for(wide, BURST)
        code = enrolled.recovery_codes[0]
        sessions_before = await live_sessions(engine)

        responses = await burst(
            partial(mfa_grant, wide, token, recovery_code=code) for token in mfa_tokens
        )

        [won] = [r for r in responses if r.status_code == 200]
        assert assert_refusals([r for r in responses if r is not won]) == {400: BURST - 1}
        claims = jwt.decode(won.json()["access_token"], options={"verify_signature": False})
        assert (claims["amr"], claims["acr"]) == (["pwd", "rc"], "aal2")
        assert await live_sessions(engine) == sessions_before + 1
        assert await failed_checks(engine) == {"rc": BURST - 1}
        assert (
            await scalar(engine, "SELECT count(*) FROM recovery_codes WHERE used_at IS NOT NULL")
            == 1
        )
        used = await scalar(
            engine, "SELECT count(*) FROM audit_events WHERE type = 'mfa.recovery_code_used'"
        )
        assert used == 1
