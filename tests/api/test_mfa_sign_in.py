"""Two-step sign-in: enrolment, the `mfa_required` challenge, the MFA grant, `amr`/`acr`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.runtime import install_runtime, runtime_of
from app.security.encryption import Encryptor
from tests.support.admins import admin_headers
from tests.support.flows import bearer, password_grant, refresh, register_and_sign_in, user_id
from tests.support.mfa import enrol_totp, mfa_grant, mfa_token_for, sign_in_with_totp
from tests.support.state import FrozenClock

pytestmark = pytest.mark.usefixtures("app")


def claims_of(tokens: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return claims


async def test_a_password_sign_in_is_aal1_with_the_password_method(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(client)

    claims = claims_of(tokens)
    assert claims["acr"] == "aal1"
    assert claims["amr"] == ["pwd"]


async def test_enrolment_shows_a_secret_and_an_otpauth_uri_and_is_pending_until_confirmed(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(client)

    started = await client.post("/users/me/mfa/totp", headers=bearer(tokens["access_token"]))

    assert started.status_code == 201
    assert started.headers["cache-control"] == "no-store"
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    status = await client.get("/users/me/mfa", headers=bearer(tokens["access_token"]))
    assert status.json() == {"totp": False, "recovery_codes_remaining": 0}
    # Pending: the password alone still signs in.
    assert (await password_grant(client, "ada@example.com")).status_code == 200


async def test_confirming_turns_mfa_on_with_ten_recovery_codes(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)

    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)

    assert len(enrolled.recovery_codes) == 10
    assert len(set(enrolled.recovery_codes)) == 10
    status = await client.get("/users/me/mfa", headers=bearer(tokens["access_token"]))
    assert status.json() == {"totp": True, "recovery_codes_remaining": 10}


async def test_a_right_password_then_asks_for_the_second_factor(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    await enrol_totp(client, tokens["access_token"], at=clock.now)

    response = await password_grant(client, "ada@example.com")

    assert response.status_code == 403
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "mfa_required"
    assert body["error_description"]
    assert len(body["mfa_token"]) >= 40
    assert "access_token" not in body
    assert "refresh_token" not in body


async def test_the_code_completes_the_sign_in_at_aal2(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)

    signed_in = await sign_in_with_totp(client, enrolled, at=clock.now)

    claims = claims_of(signed_in)
    assert claims["acr"] == "aal2"
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["auth_time"] == int(clock.now.timestamp())
    assert signed_in["refresh_token"]
    me = await client.get("/users/me", headers=bearer(signed_in["access_token"]))
    assert me.status_code == 200


async def test_a_refresh_keeps_aal2_and_never_raises_aal1(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)

    refreshed_strong = await refresh(client, strong["refresh_token"])
    refreshed_weak = await refresh(client, tokens["refresh_token"])

    assert claims_of(refreshed_strong.json())["acr"] == "aal2"
    assert claims_of(refreshed_weak.json())["acr"] == "aal1"
    assert claims_of(refreshed_weak.json())["amr"] == ["pwd"]


async def test_a_replayed_code_is_refused_within_its_window(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    code = enrolled.code(clock.now)
    first = await mfa_grant(client, await mfa_token_for(client), otp=code)
    assert first.status_code == 200

    clock.advance(seconds=5)
    replay = await mfa_grant(client, await mfa_token_for(client), otp=code)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


async def test_the_confirmation_code_cannot_be_replayed_to_sign_in(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)

    replay = await mfa_grant(client, await mfa_token_for(client), otp=enrolled.code(clock.now))

    assert replay.status_code == 400


async def test_codes_one_step_either_side_are_accepted_two_are_not(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(minutes=5)

    too_old = await mfa_grant(
        client, await mfa_token_for(client), otp=enrolled.code(clock.now, steps=-2)
    )
    too_new = await mfa_grant(
        client, await mfa_token_for(client), otp=enrolled.code(clock.now, steps=2)
    )
    behind = await mfa_grant(
        client, await mfa_token_for(client), otp=enrolled.code(clock.now, steps=-1)
    )

    assert too_old.status_code == 400
    assert too_new.status_code == 400
    assert behind.status_code == 200


async def test_an_mfa_token_works_once(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    mfa_token = await mfa_token_for(client)
    assert (await mfa_grant(client, mfa_token, otp=enrolled.code(clock.now))).status_code == 200

    clock.advance(seconds=30)
    again = await mfa_grant(client, mfa_token, otp=enrolled.code(clock.now))

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_an_mfa_token_expires_after_five_minutes(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    mfa_token = await mfa_token_for(client)

    clock.advance(seconds=301)
    late = await mfa_grant(client, mfa_token, otp=enrolled.code(clock.now))

    assert late.status_code == 400


async def test_five_wrong_codes_void_the_mfa_token(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    mfa_token = await mfa_token_for(client)
    right = enrolled.code(clock.now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    answers = [await mfa_grant(client, mfa_token, otp=wrong) for _ in range(5)]
    after = await mfa_grant(client, mfa_token, otp=right)

    assert [answer.status_code for answer in answers] == [400] * 5
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


async def test_a_recovery_code_signs_in_once(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    code = enrolled.recovery_codes[0]

    first = await mfa_grant(client, await mfa_token_for(client), recovery_code=code.upper())
    again = await mfa_grant(client, await mfa_token_for(client), recovery_code=code)

    assert first.status_code == 200
    assert claims_of(first.json())["acr"] == "aal2"
    assert again.status_code == 400
    status = await client.get("/users/me/mfa", headers=bearer(first.json()["access_token"]))
    assert status.json()["recovery_codes_remaining"] == 9


async def test_the_mfa_grant_needs_exactly_one_kind_of_code(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    mfa_token = await mfa_token_for(client)

    neither = await mfa_grant(client, mfa_token)
    both = await mfa_grant(
        client, mfa_token, otp=enrolled.code(clock.now), recovery_code=enrolled.recovery_codes[0]
    )

    assert neither.status_code == both.status_code == 400
    assert neither.json()["error"] == both.json()["error"] == "invalid_request"


async def test_confirming_ends_the_other_sessions(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    other = await password_grant(client, "ada@example.com")

    await enrol_totp(client, tokens["access_token"], at=clock.now)

    assert (
        await client.get("/users/me", headers=bearer(other.json()["access_token"]))
    ).status_code == 401
    assert (await refresh(client, other.json()["refresh_token"])).status_code == 400
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200


async def test_enrolling_needs_a_recent_sign_in(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    clock.advance(minutes=6)
    refreshed = (await refresh(client, tokens["refresh_token"])).json()

    response = await client.post("/users/me/mfa/totp", headers=bearer(refreshed["access_token"]))

    assert response.status_code == 401
    assert 'error="insufficient_user_authentication"' in response.headers["www-authenticate"]


async def test_enrolling_again_while_pending_replaces_the_secret_and_while_on_is_409(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    headers = bearer(tokens["access_token"])
    first = (await client.post("/users/me/mfa/totp", headers=headers)).json()
    second = (await client.post("/users/me/mfa/totp", headers=headers)).json()
    assert first["secret"] != second["secret"]

    import pyotp

    confirmed = await client.post(
        "/users/me/mfa/totp/confirm",
        json={"code": pyotp.TOTP(second["secret"]).at(clock.now)},
        headers=headers,
    )
    assert confirmed.status_code == 200
    again = await client.post("/users/me/mfa/totp", headers=headers)
    assert again.status_code == 409
    confirm_again = await client.post(
        "/users/me/mfa/totp/confirm", json={"code": "123456"}, headers=headers
    )
    assert confirm_again.status_code == 409


async def test_a_wrong_confirmation_code_is_400_and_leaves_mfa_off(
    client: httpx.AsyncClient,
) -> None:
    tokens = await register_and_sign_in(client)
    headers = bearer(tokens["access_token"])
    await client.post("/users/me/mfa/totp", headers=headers)

    wrong = await client.post(
        "/users/me/mfa/totp/confirm", json={"code": "000000x"}, headers=headers
    )

    assert wrong.status_code == 400
    assert (await client.get("/users/me/mfa", headers=headers)).json()["totp"] is False


async def test_removing_mfa_needs_a_step_up_and_removes_the_recovery_codes(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)

    weak = await client.delete("/users/me/mfa/totp", headers=bearer(tokens["access_token"]))
    assert weak.status_code == 401
    challenge = weak.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="aal2"' in challenge
    assert "max_age=300" in challenge

    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)
    removed = await client.delete("/users/me/mfa/totp", headers=bearer(strong["access_token"]))
    assert removed.status_code == 204

    # The password alone signs in again, and the old recovery codes are gone.
    assert (await password_grant(client, "ada@example.com")).status_code == 200
    status = await client.get("/users/me/mfa", headers=bearer(strong["access_token"]))
    assert status.json() == {"totp": False, "recovery_codes_remaining": 0}


async def test_new_recovery_codes_void_the_old_set(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)

    renewed = await client.post(
        "/users/me/mfa/recovery-codes", headers=bearer(strong["access_token"])
    )

    assert renewed.status_code == 200
    new_codes = renewed.json()["recovery_codes"]
    assert len(new_codes) == 10
    old = await mfa_grant(
        client, await mfa_token_for(client), recovery_code=enrolled.recovery_codes[1]
    )
    assert old.status_code == 400
    new = await mfa_grant(client, await mfa_token_for(client), recovery_code=new_codes[0])
    assert new.status_code == 200


async def test_a_step_up_goes_stale_after_max_age(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)

    clock.advance(seconds=301)
    stale = await client.post(
        "/users/me/mfa/recovery-codes", headers=bearer(strong["access_token"])
    )

    assert stale.status_code == 401
    assert 'acr_values="aal2"' in stale.headers["www-authenticate"]


async def test_an_unreadable_authenticator_secret_is_503_and_recovery_codes_still_work(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    clock.advance(seconds=30)
    # The operator dropped the key the secret was made under (before re-encrypting).
    other_key = Encryptor([Fernet.generate_key()])
    install_runtime(app, replace(runtime_of(app), load_data_encryptor=lambda: other_key))

    by_code = await mfa_grant(client, await mfa_token_for(client), otp=enrolled.code(clock.now))
    by_recovery_code = await mfa_grant(
        client, await mfa_token_for(client), recovery_code=enrolled.recovery_codes[0]
    )

    assert by_code.status_code == 503
    assert by_code.json()["error"] == "temporarily_unavailable"
    assert int(by_code.headers["retry-after"]) > 0
    assert by_recovery_code.status_code == 200


async def test_a_sign_in_counts_as_the_last_one_only_once_the_second_factor_is_passed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    ada = await user_id(client, bearer(tokens["access_token"]))

    async def last_login() -> str | None:
        response = await client.get(f"/admin/users/{ada}", headers=root)
        value: str | None = response.json()["last_login_at"]
        return value

    before = await last_login()
    clock.advance(minutes=2)
    mfa_token = await mfa_token_for(client)
    assert await last_login() == before  # the password alone is not a sign-in yet

    clock.advance(seconds=30)
    assert (await mfa_grant(client, mfa_token, otp=enrolled.code(clock.now))).status_code == 200
    after = await last_login()
    assert after is not None
    assert after != before
