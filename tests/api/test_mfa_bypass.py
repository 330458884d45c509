"""No way around the second factor (issue 17, "what peers got wrong").

Every way to get tokens for a user with a confirmed factor goes through the challenge (the
password grant by email or username, a provider sign-in); a refresh never raises `acr`; the
`mfa_token` answers only the client that signed in and dies with a password reset, a
logout-all or a deactivation; re-enrolling never answers 500; removing the factor leaves no
recovery code behind; wrong codes are failed sign-ins on the password's budget; and a
squatter's factor on a pre-hijacked account does not survive the owner's provider sign-in.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.mail.smtp_server import SmtpServer, extract_token, sending_to, smtp_server
from tests.oauth.authorization_server import Identity
from tests.oauth.conftest import provider_settings, standin, standin_server
from tests.oauth.flows import sign_in_with, tokens_from, verified_account
from tests.oauth.provider_standin import OIDCStandin
from tests.support.admins import (
    admin_headers,
    audit_events,
    find_user,
    register_client,
    update_user,
)
from tests.support.attempts import client_at
from tests.support.flows import (
    basic,
    bearer,
    password_grant,
    refresh,
    register_and_sign_in,
)
from tests.support.mfa import (
    MFA_GRANT,
    Enrolled,
    enrol_totp,
    mfa_grant,
    mfa_token_for,
    sign_in_with_totp,
)
from tests.support.state import FrozenClock

__all__ = ["smtp_server", "standin", "standin_server"]  # fixtures, re-exported for pytest

pytestmark = pytest.mark.usefixtures("app")

ADA_EMAIL = "ada@example.com"
ADA = Identity(sub="acme-ada-1", email=ADA_EMAIL, email_verified=True, name="Ada")
NEW_PASSWORD = "a brand new passphrase for ada"
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def settings_overrides(standin: OIDCStandin) -> dict[str, object]:
    """The stand-in OpenID Connect provider as "acme"; every other setting as deployed."""
    return provider_settings(standin)


def claims_of(tokens: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return claims


def assert_mfa_required(response: httpx.Response) -> str:
    """A 403 `mfa_required` with no token in it; its `mfa_token`."""
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "mfa_required", body
    assert "access_token" not in body
    assert "refresh_token" not in body
    token: str = body["mfa_token"]
    return token


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def wrong_code(enrolled: Enrolled, clock: FrozenClock) -> str:
    """A six-digit code the authenticator shows at no step the service would accept now."""
    accepted = {enrolled.code(clock.now, steps=steps) for steps in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in accepted)


async def enrolled_ada(
    client: httpx.AsyncClient, clock: FrozenClock, **extra: Any
) -> tuple[dict[str, Any], Enrolled]:
    """Ada registered, signed in (aal1) and with a confirmed authenticator; the clock moved
    on a step, so the authenticator shows a code not used yet."""
    tokens = await register_and_sign_in(client, ADA_EMAIL, **extra)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    return tokens, enrolled


async def mfa_status(client: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    response = await client.get("/users/me/mfa", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- every sign-in path goes through the challenge --------------------------------------------


async def test_the_password_grant_by_email_or_username_asks_for_the_second_factor(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    _, enrolled = await enrolled_ada(client, clock, username="ada")

    answers = [
        await password_grant(client, name, **scope)
        for name in ("ada@example.com", "ADA@Example.com", "ada", "Ada")
        for scope in ({}, {"scope": "users:read"})
    ]

    mfa_tokens = [assert_mfa_required(answer) for answer in answers]
    assert len(set(mfa_tokens)) == len(answers)
    signed_in = await mfa_grant(client, mfa_tokens[-1], otp=enrolled.code(clock.now))
    assert signed_in.status_code == 200, signed_in.text
    assert claims_of(signed_in.json())["acr"] == "aal2"


async def test_a_provider_sign_in_is_challenged_and_completes_as_fed_and_otp(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, clock: FrozenClock
) -> None:
    local = await verified_account(client, sessions)
    enrolled = await enrol_totp(client, local["access_token"], at=clock.now)
    clock.advance(seconds=30)

    callback = await sign_in_with(client, "acme", standin, ADA)

    mfa_token = assert_mfa_required(callback)
    assert callback.headers["cache-control"] == "no-store"
    signed_in = await mfa_grant(client, mfa_token, otp=enrolled.code(clock.now))
    assert signed_in.status_code == 200, signed_in.text
    claims = claims_of(signed_in.json())
    assert claims["amr"] == ["fed", "otp"]
    assert claims["acr"] == "aal2"
    assert signed_in.json()["refresh_token"]


async def test_an_identity_linked_before_mfa_is_challenged_and_a_recovery_code_completes_it(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, clock: FrozenClock
) -> None:
    local = await verified_account(client, sessions)
    before = await tokens_from(client, "acme", standin, ADA)  # links the identity
    assert claims_of(before)["amr"] == ["fed"]
    enrolled = await enrol_totp(client, local["access_token"], at=clock.now)

    callback = await sign_in_with(client, "acme", standin, ADA)

    mfa_token = assert_mfa_required(callback)
    signed_in = await mfa_grant(client, mfa_token, recovery_code=enrolled.recovery_codes[0])
    assert signed_in.status_code == 200, signed_in.text
    assert claims_of(signed_in.json())["amr"] == ["fed", "rc"]
    assert claims_of(signed_in.json())["acr"] == "aal2"


async def test_a_session_from_before_mfa_stays_aal1_through_every_refresh(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    # Confirming the factor keeps the session that confirmed it: an aal1 session.
    weak, enrolled = await enrolled_ada(client, clock)
    # A sign-in that passes the second factor elsewhere lends this session nothing.
    await sign_in_with_totp(client, enrolled, at=clock.now)

    current = weak
    for _ in range(3):
        clock.advance(minutes=2)
        response = await refresh(client, current["refresh_token"])
        assert response.status_code == 200, response.text
        current = response.json()
        claims = claims_of(current)
        assert claims["acr"] == "aal1"
        assert claims["amr"] == ["pwd"]

    step_up = await client.post(
        "/users/me/mfa/recovery-codes", headers=bearer(current["access_token"])
    )
    assert step_up.status_code == 401
    assert 'acr_values="aal2"' in step_up.headers["www-authenticate"]


# --- the mfa_token: bound to its client, void once the account moves on ----------------------


class TestTheMfaTokensClient:
    @pytest.fixture
    def settings_overrides(self, standin: OIDCStandin) -> dict[str, object]:
        return provider_settings(standin, public_clients=["authsvc-web", "authsvc-mobile"])

    async def test_only_the_client_that_signed_in_can_answer_the_challenge(
        self, client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
    ) -> None:
        root = await admin_headers(client, sessions, superuser=True)
        service_id, service_secret = await register_client(client, root)
        _, enrolled = await enrolled_ada(client, clock)
        web_token = await mfa_token_for(client)  # naming no client: the first-party one
        mobile_token = assert_mfa_required(
            await password_grant(client, ADA_EMAIL, client_id="authsvc-mobile")
        )
        code = enrolled.code(clock.now)

        by_another_public_client = await mfa_grant(
            client, web_token, otp=code, client_id="authsvc-mobile"
        )
        by_a_service_client = await client.post(
            "/auth/token",
            data={"grant_type": MFA_GRANT, "mfa_token": web_token, "otp": code},
            headers=basic(service_id, service_secret),
        )
        by_a_service_client_post = await mfa_grant(
            client,
            mobile_token,
            otp=code,
            client_id=service_id,
            client_secret=service_secret,
        )
        by_the_default_client = await mfa_grant(client, mobile_token, otp=code)

        assert_invalid_grant(by_another_public_client)
        # A service client is not registered for the password grant, so not for the second
        # factor that follows it either.
        for refused in (by_a_service_client, by_a_service_client_post):
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"] == "unauthorized_client"
        assert_invalid_grant(by_the_default_client)
        # Nothing was checked for them: the code is unused and the tokens still open.
        signed_in = await mfa_grant(client, web_token, otp=code)
        assert signed_in.status_code == 200, signed_in.text
        clock.advance(seconds=30)
        on_mobile = await mfa_grant(
            client, mobile_token, otp=enrolled.code(clock.now), client_id="authsvc-mobile"
        )
        assert on_mobile.status_code == 200, on_mobile.text
        assert claims_of(on_mobile.json())["client_id"] == "authsvc-mobile"


async def test_a_logout_all_between_the_two_steps_voids_the_mfa_token(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    weak, enrolled = await enrolled_ada(client, clock)
    mfa_token = await mfa_token_for(client)

    ended = await client.post("/auth/logout-all", headers=bearer(weak["access_token"]))

    assert ended.status_code == 204
    assert_invalid_grant(await mfa_grant(client, mfa_token, otp=enrolled.code(clock.now)))
    # A new sign-in goes through as usual.
    fresh = await mfa_grant(client, await mfa_token_for(client), otp=enrolled.code(clock.now))
    assert fresh.status_code == 200, fresh.text


class TestPasswordResetBetweenTheSteps:
    @pytest.fixture
    def settings_overrides(self, smtp_server: SmtpServer) -> dict[str, object]:
        return sending_to(smtp_server)

    async def test_a_password_reset_voids_the_mfa_token_and_keeps_the_second_factor(
        self, client: httpx.AsyncClient, clock: FrozenClock, smtp_server: SmtpServer
    ) -> None:
        _, enrolled = await enrolled_ada(client, clock)
        mfa_token = await mfa_token_for(client)

        asked = await client.post("/auth/password/forgot", json={"email": ADA_EMAIL})
        assert asked.status_code == 202
        link = await mail_with_subject(smtp_server, "Reset your password")
        reset = await client.post(
            "/auth/password/reset",
            json={"token": extract_token(link), "new_password": NEW_PASSWORD},
        )
        assert reset.status_code == 204, reset.text

        assert_invalid_grant(await mfa_grant(client, mfa_token, otp=enrolled.code(clock.now)))
        # A reset proves the mailbox, not the authenticator: the new password is challenged.
        assert_mfa_required(await password_grant(client, ADA_EMAIL, NEW_PASSWORD))


async def mail_with_subject(smtp_server: SmtpServer, subject: str) -> EmailMessage:
    """The first mail with `subject` (other notices may arrive before it)."""
    for count in range(1, 10):
        messages = await smtp_server.wait_for(count)
        matching = [message for message in messages if message["Subject"] == subject]
        if matching:
            return matching[0]
    raise AssertionError(f"no mail with subject {subject!r}")


async def test_a_deactivated_users_mfa_token_is_refused_even_after_reactivation(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock
) -> None:
    _, enrolled = await enrolled_ada(client, clock)
    while_inactive = await mfa_token_for(client)
    across_reactivation = await mfa_token_for(client)
    code = enrolled.code(clock.now)

    async with sessions() as session:
        await update_user(session, ADA_EMAIL, is_active=False)
    refused = await mfa_grant(client, while_inactive, otp=code)
    async with sessions() as session:
        await update_user(session, ADA_EMAIL, is_active=True)
    stale = await mfa_grant(client, across_reactivation, otp=code)

    assert_invalid_grant(refused)
    assert_invalid_grant(stale)
    # The reactivated account signs in afresh with the same, still unused, code.
    fresh = await mfa_grant(client, await mfa_token_for(client), otp=code)
    assert fresh.status_code == 200, fresh.text


# --- enrolment and removal --------------------------------------------------------------------


async def test_re_enrolling_in_one_session_never_answers_500(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client, ADA_EMAIL)
    headers = bearer(tokens["access_token"])

    async def start() -> httpx.Response:
        return await client.post("/users/me/mfa/totp", headers=headers)

    async def confirm(secret: str, *, steps: int = 0) -> httpx.Response:
        code = pyotp.TOTP(secret).at(clock.now.timestamp() + 30 * steps)
        return await client.post("/users/me/mfa/totp/confirm", json={"code": code}, headers=headers)

    first, second = await start(), await start()
    parallel = await asyncio.gather(*(start() for _ in range(5)))
    assert [r.status_code for r in (first, second, *parallel)] == [201] * 7
    secrets = [r.json()["secret"] for r in (first, second, *parallel)]
    assert len(set(secrets)) == 7
    # Only the pending authenticator that was started last (of the parallel ones: whichever
    # committed last) can be confirmed; the ones it replaced are wrong codes.
    confirmations = await asyncio.gather(*(confirm(secret) for secret in secrets))
    # A replaced secret's code is a wrong code (400), or, once the winner is in, too late (409).
    codes = sorted(r.status_code for r in confirmations)
    assert codes[0] == 200, [r.text for r in confirmations]
    assert set(codes[1:]) <= {400, 409}, [r.text for r in confirmations]
    [winner] = [s for s, r in zip(secrets, confirmations, strict=True) if r.status_code == 200]

    again = await asyncio.gather(confirm(winner), confirm(winner, steps=1), start(), start())

    assert [r.status_code for r in again] == [409] * 4, [r.text for r in again]
    assert await mfa_status(client, tokens["access_token"]) == {
        "totp": True,
        "recovery_codes_remaining": 10,
    }


async def test_parallel_confirmations_turn_mfa_on_once(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client, ADA_EMAIL)
    headers = bearer(tokens["access_token"])
    started = await client.post("/users/me/mfa/totp", headers=headers)
    code = pyotp.TOTP(started.json()["secret"]).at(clock.now)

    confirmations = await asyncio.gather(
        *(
            client.post("/users/me/mfa/totp/confirm", json={"code": code}, headers=headers)
            for _ in range(6)
        )
    )

    assert sorted(r.status_code for r in confirmations) == [200] + [409] * 5, [
        r.text for r in confirmations
    ]
    [shown] = [r.json()["recovery_codes"] for r in confirmations if r.status_code == 200]
    assert (await mfa_status(client, tokens["access_token"]))["recovery_codes_remaining"] == 10
    signed_in = await mfa_grant(client, await mfa_token_for(client), recovery_code=shown[0])
    assert signed_in.status_code == 200, signed_in.text


async def removed_by_the_owner(
    client: httpx.AsyncClient, sessions: Sessions, enrolled: Enrolled, clock: FrozenClock
) -> None:
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)
    removed = await client.delete("/users/me/mfa/totp", headers=bearer(strong["access_token"]))
    assert removed.status_code == 204, removed.text


async def reset_by_an_administrator(
    client: httpx.AsyncClient, sessions: Sessions, enrolled: Enrolled, clock: FrozenClock
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    async with sessions() as session:
        ada = await find_user(session, ADA_EMAIL)
    reset = await client.delete(f"/admin/users/{ada.id}/mfa", headers=root)
    assert reset.status_code == 204, reset.text


@pytest.mark.parametrize("removal", [removed_by_the_owner, reset_by_an_administrator])
async def test_no_recovery_code_outlives_the_factor(
    client: httpx.AsyncClient, sessions: Sessions, clock: FrozenClock, removal: Any
) -> None:
    _, enrolled = await enrolled_ada(client, clock)
    leftover = enrolled.recovery_codes
    opened_before = await mfa_token_for(client)

    await removal(client, sessions, enrolled, clock)

    # Nothing forces a second factor any more ...
    plain = await password_grant(client, ADA_EMAIL)
    assert plain.status_code == 200, plain.text
    assert claims_of(plain.json())["amr"] == ["pwd"]
    assert await mfa_status(client, plain.json()["access_token"]) == {
        "totp": False,
        "recovery_codes_remaining": 0,
    }
    # ... and nothing left over satisfies one: not on a challenge opened before the removal,
    assert_invalid_grant(await mfa_grant(client, opened_before, recovery_code=leftover[1]))
    # nor on one of a new enrolment.
    clock.advance(seconds=30)
    again = await enrol_totp(client, plain.json()["access_token"], at=clock.now)
    assert set(again.recovery_codes).isdisjoint(leftover)
    for code in leftover[2:4]:
        assert_invalid_grant(
            await mfa_grant(client, await mfa_token_for(client), recovery_code=code)
        )
    fresh = await mfa_grant(
        client, await mfa_token_for(client), recovery_code=again.recovery_codes[0]
    )
    assert fresh.status_code == 200, fresh.text


# --- wrong codes are failed sign-ins ----------------------------------------------------------


class TestWrongCodesAreFailedSignIns:
    @pytest.fixture
    def settings_overrides(self, standin: OIDCStandin) -> dict[str, object]:
        return provider_settings(
            standin,
            rate_limit_login_account_ip="4/15 minutes",
            rate_limit_login_account="100/hour",
            rate_limit_login_ip="100/15 minutes",
        )

    async def test_wrong_codes_are_audited_and_spend_the_passwords_budget(
        self, app: FastAPI, sessions: Sessions, clock: FrozenClock
    ) -> None:
        guesser_ip, owner_ip = "203.0.113.66", "198.51.100.7"
        async with client_at(app, guesser_ip) as guesser:
            tokens = await register_and_sign_in(guesser, ADA_EMAIL)
            enrolled = await enrol_totp(guesser, tokens["access_token"], at=clock.now)
            clock.advance(seconds=30)
            wrong = wrong_code(enrolled, clock)
            first, second = await mfa_token_for(guesser), await mfa_token_for(guesser)

            guesses = [
                await mfa_grant(guesser, first, otp=wrong),
                await mfa_grant(guesser, first, otp="12345x"),
                await mfa_grant(guesser, second, recovery_code="aaaa-bbbb-cccc-dddd"),
                await mfa_grant(guesser, second, recovery_code=enrolled.recovery_codes[0] + "x"),
            ]
            password_after = await password_grant(guesser, ADA_EMAIL)
            right_code_after = await mfa_grant(guesser, first, otp=enrolled.code(clock.now))

        for guess in guesses:
            assert_invalid_grant(guess)
        for refused in (password_after, right_code_after):
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) > 0
        failures = await audit_events(sessions, "login.failed")
        assert [event.details["check"] for event in failures] == ["otp", "otp", "rc", "rc"]
        async with sessions() as session:
            ada = await find_user(session, ADA_EMAIL)
        assert {event.user_id for event in failures} == {ada.id}
        assert {event.ip for event in failures} == {guesser_ip}
        # The owner, elsewhere, is not locked out; the guesses voided nothing she holds.
        async with client_at(app, owner_ip) as owner:
            signed_in = await mfa_grant(owner, first, otp=enrolled.code(clock.now))
            assert signed_in.status_code == 200, signed_in.text

    async def test_the_right_password_does_not_wipe_the_count_of_wrong_codes(
        self, app: FastAPI, sessions: Sessions, clock: FrozenClock
    ) -> None:
        # Who guesses codes usually knows the password: if each right password cleared the
        # address's count, guesses interleaved with password grants would never run out.
        async with client_at(app, "203.0.113.66") as guesser:
            _, enrolled = await enrolled_ada(guesser, clock)
            wrong = wrong_code(enrolled, clock)
            answers = []
            for _ in range(4):  # the address's limit
                mfa_token = assert_mfa_required(await password_grant(guesser, ADA_EMAIL))
                answers.append(await mfa_grant(guesser, mfa_token, otp=wrong))
            after = await password_grant(guesser, ADA_EMAIL)

        assert [a.status_code for a in answers] == [400] * 4
        assert len(await audit_events(sessions, "login.failed")) == 4
        assert after.status_code == 429, after.text

    async def test_a_wrong_confirmation_code_is_a_failed_sign_in_too(
        self, app: FastAPI, sessions: Sessions, clock: FrozenClock
    ) -> None:
        async with client_at(app, "203.0.113.66") as client:
            tokens = await register_and_sign_in(client, ADA_EMAIL)
            headers = bearer(tokens["access_token"])
            started = await client.post("/users/me/mfa/totp", headers=headers)
            pending = Enrolled(started.json()["secret"], [])
            wrong = [
                await client.post(
                    "/users/me/mfa/totp/confirm",
                    json={"code": wrong_code(pending, clock)},
                    headers=headers,
                )
                for _ in range(5)
            ]
            password_after = await password_grant(client, ADA_EMAIL)

        assert [r.status_code for r in wrong] == [400] * 4 + [429]
        assert password_after.status_code == 429
        checks = [event.details["check"] for event in await audit_events(sessions, "login.failed")]
        assert checks == ["totp_confirmation"] * 4


# --- account pre-hijacking ----------------------------------------------------------------------


async def test_a_squatters_second_factor_does_not_survive_the_owners_provider_sign_in(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions, clock: FrozenClock
) -> None:
    # A squatter registers the victim's address (never verified), and turns MFA on, hoping
    # the owner will be asked for a code only the squatter has.
    squatter = await register_and_sign_in(client, ADA_EMAIL)
    factor = await enrol_totp(client, squatter["access_token"], at=clock.now)
    clock.advance(seconds=30)
    squatters_challenge = await mfa_token_for(client)

    owner = await sign_in_with(client, "acme", standin, ADA)

    assert owner.status_code == 200, owner.text
    claims = claims_of(owner.json())
    assert (claims["amr"], claims["acr"]) == (["fed"], "aal1")
    owner_token = owner.json()["access_token"]
    assert await mfa_status(client, owner_token) == {"totp": False, "recovery_codes_remaining": 0}
    # The squatter's factor is gone with the password: neither half of a sign-in works.
    assert_invalid_grant(await mfa_grant(client, squatters_challenge, otp=factor.code(clock.now)))
    assert (await password_grant(client, ADA_EMAIL)).status_code == 400
    # The owner signs in again without a second factor, and may enrol her own.
    await tokens_from(client, "acme", standin, ADA)
    own = await enrol_totp(client, owner_token, at=clock.now)
    assert set(own.recovery_codes).isdisjoint(factor.recovery_codes)
    assert (await mfa_status(client, owner_token))["recovery_codes_remaining"] == 10
