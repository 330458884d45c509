"""The mail two-step sign-in sends the owner of an account, as it arrives at a real SMTP
server: one notice when it is turned on, one when it is turned off (by the owner or by an
administrator), one when a recovery code signs in; none for steps that change nothing. No
notice carries the password, the authenticator's secret, a recovery code or an `mfa_token`,
in any spelling."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.mail.smtp_server import SmtpServer, html_part, sending_to, smtp_server, text_part
from tests.support.admins import admin_headers
from tests.support.flows import PASSWORD, bearer, register_and_sign_in, user_id
from tests.support.mfa import Enrolled, enrol_totp, mfa_grant, mfa_token_for, sign_in_with_totp
from tests.support.outbox import delivered_mail
from tests.support.state import FrozenClock

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.usefixtures("app")

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, object]:
    return sending_to(smtp_server)


def spellings(secret: str) -> set[str]:
    """`secret` as it might be written out: as is, in either case, without its hyphens."""
    forms = {secret, secret.lower(), secret.upper()}
    return forms | {form.replace("-", "") for form in forms}


def assert_no_secret(mail: EmailMessage, *secrets: str) -> None:
    """No spelling of any of `secrets` in the headers or in either decoded body."""
    readable = "\n".join((mail.as_string(), text_part(mail), html_part(mail)))
    for secret in secrets:
        for form in spellings(secret):
            assert form not in readable, f"a secret is in the mail {mail['Subject']!r}"


def secrets_of(enrolled: Enrolled, *more: str) -> tuple[str, ...]:
    return (PASSWORD, enrolled.secret, *enrolled.recovery_codes, *more)


def only_notice(mails: list[EmailMessage], subject: str) -> EmailMessage:
    """The one mail of this step: to Ada, with `subject`."""
    assert [(mail["To"], mail["Subject"]) for mail in mails] == [("ada@example.com", subject)]
    return mails[0]


async def enrolled_ada(
    client: httpx.AsyncClient, sessions: Sessions, smtp_server: SmtpServer, clock: FrozenClock
) -> tuple[dict[str, Any], Enrolled]:
    """Ada, signed in with her password, with a confirmed authenticator; the mail so far read."""
    tokens = await register_and_sign_in(client)
    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)
    await delivered_mail(sessions, smtp_server)
    return tokens, enrolled


async def test_turning_mfa_on_mails_the_owner_once_without_the_secret_or_the_codes(
    client: httpx.AsyncClient, sessions: Sessions, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    assert await delivered_mail(sessions, smtp_server) == []

    enrolled = await enrol_totp(client, tokens["access_token"], at=clock.now)

    mail = only_notice(
        await delivered_mail(sessions, smtp_server), "Two-step sign-in was turned on"
    )
    assert "turned on" in text_part(mail)
    assert "turned on" in html_part(mail)
    assert_no_secret(mail, *secrets_of(enrolled))


async def test_turning_mfa_off_mails_the_owner_once(
    client: httpx.AsyncClient, sessions: Sessions, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    _, enrolled = await enrolled_ada(client, sessions, smtp_server, clock)
    clock.advance(seconds=30)
    strong = await sign_in_with_totp(client, enrolled, at=clock.now)
    assert await delivered_mail(sessions, smtp_server) == []  # a second-factor sign-in: none

    removed = await client.delete("/users/me/mfa/totp", headers=bearer(strong["access_token"]))

    assert removed.status_code == 204
    mail = only_notice(
        await delivered_mail(sessions, smtp_server), "Two-step sign-in was turned off"
    )
    assert "from your account" in text_part(mail)
    assert "by an administrator" not in text_part(mail)
    assert_no_secret(mail, *secrets_of(enrolled, strong["access_token"], strong["refresh_token"]))


async def test_an_administrators_reset_mails_the_owner_once_saying_so(
    client: httpx.AsyncClient, sessions: Sessions, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    tokens, enrolled = await enrolled_ada(client, sessions, smtp_server, clock)
    ada = await user_id(client, bearer(tokens["access_token"]))

    reset = await client.delete(f"/admin/users/{ada}/mfa", headers=root)

    assert reset.status_code == 204
    mail = only_notice(
        await delivered_mail(sessions, smtp_server), "Two-step sign-in was turned off"
    )
    assert "by an administrator" in text_part(mail)
    assert "by an administrator" in html_part(mail)
    assert_no_secret(mail, *secrets_of(enrolled))


async def test_a_recovery_code_sign_in_mails_the_owner_once_with_the_codes_left(
    client: httpx.AsyncClient, sessions: Sessions, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    _, enrolled = await enrolled_ada(client, sessions, smtp_server, clock)
    mfa_token = await mfa_token_for(client)

    used = await mfa_grant(client, mfa_token, recovery_code=enrolled.recovery_codes[3])

    assert used.status_code == 200
    mail = only_notice(
        await delivered_mail(sessions, smtp_server), "A recovery code was used to sign in"
    )
    assert "9 recovery codes left" in text_part(mail)
    assert_no_secret(mail, *secrets_of(enrolled, mfa_token))

    second = await mfa_grant(
        client, await mfa_token_for(client), recovery_code=enrolled.recovery_codes[7]
    )
    assert second.status_code == 200
    mail = only_notice(
        await delivered_mail(sessions, smtp_server), "A recovery code was used to sign in"
    )
    assert "8 recovery codes left" in text_part(mail)


async def test_steps_that_change_nothing_mail_nobody(
    client: httpx.AsyncClient, sessions: Sessions, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    tokens = await register_and_sign_in(client)
    headers = bearer(tokens["access_token"])
    started = await client.post("/users/me/mfa/totp", headers=headers)
    assert started.status_code == 201
    code = Enrolled(started.json()["secret"], []).code(clock.now)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = await client.post("/users/me/mfa/totp/confirm", json={"code": wrong}, headers=headers)
    assert refused.status_code == 400
    assert await delivered_mail(sessions, smtp_server) == []  # a pending factor is not MFA

    confirmed = await client.post(
        "/users/me/mfa/totp/confirm", json={"code": code}, headers=headers
    )
    assert confirmed.status_code == 200
    assert len(await delivered_mail(sessions, smtp_server)) == 1  # turned on
    codes = confirmed.json()["recovery_codes"]
    wrong_code = await mfa_grant(
        client, await mfa_token_for(client), recovery_code="aaaa-bbbb-cccc-dddd"
    )
    assert wrong_code.status_code == 400
    clock.advance(seconds=30)
    enrolled = Enrolled(started.json()["secret"], codes)
    await sign_in_with_totp(client, enrolled, at=clock.now)

    assert await delivered_mail(sessions, smtp_server) == []
