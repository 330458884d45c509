"""Email verification and password reset, end to end through a real SMTP server."""

from __future__ import annotations

import asyncio
import logging
import socket
from email.message import EmailMessage

import httpx
import pytest

from tests.mail.smtp_server import SmtpServer, extract_token, html_part, smtp_server, text_part
from tests.support.flows import (
    PASSWORD,
    bearer,
    password_grant,
    refresh,
    register,
    register_and_sign_in,
    sign_in,
)
from tests.support.state import FrozenClock

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest

FRONTEND = "https://app.example"
NEW_PASSWORD = "a brand new passphrase for ada"


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, object]:
    return {
        "email_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "frontend_url": FRONTEND,
        "outbox_max_attempts": 1,
    }


async def mail_for(smtp_server: SmtpServer, address: str) -> EmailMessage:
    messages = await smtp_server.wait_for(1)
    matching = [m for m in messages if m["To"] == address]
    assert matching, f"no mail to {address}: {[m['To'] for m in messages]}"
    return matching[-1]


async def request_verification(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/auth/verify/request", json={"email": email})


async def forgot(client: httpx.AsyncClient, email: str = "ada@example.com") -> httpx.Response:
    return await client.post("/auth/password/forgot", json={"email": email})


async def reset(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await client.post(
        "/auth/password/reset", json={"token": token, "new_password": password}
    )


async def no_mail_arrives(smtp_server: SmtpServer) -> None:
    await asyncio.sleep(0.2)
    assert smtp_server.messages == []


@pytest.mark.usefixtures("app")
async def test_verification_link_verifies_once(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)

    assert (await request_verification(client, "ADA@example.com")).status_code == 202
    message = await mail_for(smtp_server, "ada@example.com")
    token = extract_token(message)
    assert f"{FRONTEND}/verify?token=" in text_part(message)
    assert f"{FRONTEND}/verify?token=" in html_part(message)

    verified = await client.post("/auth/verify", json={"token": token})
    replay = await client.post("/auth/verify", json={"token": token})

    assert verified.status_code == 200
    assert verified.json()["is_verified"] is True
    assert replay.status_code == 400
    assert replay.headers["content-type"] == "application/problem+json"


@pytest.mark.usefixtures("app")
async def test_unknown_address_gets_202_and_no_mail(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    assert (await request_verification(client, "nobody@example.com")).status_code == 202
    assert (await forgot(client, "nobody@example.com")).status_code == 202
    await no_mail_arrives(smtp_server)


@pytest.mark.usefixtures("app")
async def test_verified_account_gets_no_new_link(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)
    await request_verification(client, "ada@example.com")
    token = extract_token(await mail_for(smtp_server, "ada@example.com"))
    await client.post("/auth/verify", json={"token": token})
    smtp_server.clear()

    assert (await request_verification(client, "ada@example.com")).status_code == 202
    await no_mail_arrives(smtp_server)


async def test_expired_verification_link_is_refused(
    client: httpx.AsyncClient, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    await register(client)
    await request_verification(client, "ada@example.com")
    token = extract_token(await mail_for(smtp_server, "ada@example.com"))
    clock.advance(hours=24, seconds=1)

    assert (await client.post("/auth/verify", json={"token": token})).status_code == 400


async def test_reset_link_expires_after_30_minutes(
    client: httpx.AsyncClient, smtp_server: SmtpServer, clock: FrozenClock
) -> None:
    await register(client)
    await forgot(client)
    token = extract_token(await mail_for(smtp_server, "ada@example.com"))
    clock.advance(minutes=30, seconds=1)

    assert (await reset(client, token, NEW_PASSWORD)).status_code == 400
    assert (await password_grant(client, "ada@example.com", PASSWORD)).status_code == 200


@pytest.mark.usefixtures("app")
async def test_concurrent_redemptions_of_one_reset_link_let_one_win(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)
    await forgot(client)
    token = extract_token(await mail_for(smtp_server, "ada@example.com"))

    responses = await asyncio.gather(
        *(reset(client, token, f"{NEW_PASSWORD} number {i}") for i in range(4))
    )

    assert sorted(r.status_code for r in responses) == [204, 400, 400, 400]


@pytest.mark.usefixtures("app")
async def test_links_only_work_for_their_own_purpose(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)
    await request_verification(client, "ada@example.com")
    verify_token = extract_token(await mail_for(smtp_server, "ada@example.com"))
    smtp_server.clear()
    await forgot(client)
    reset_token = extract_token(await mail_for(smtp_server, "ada@example.com"))

    assert (await reset(client, verify_token, NEW_PASSWORD)).status_code == 400
    assert (await client.post("/auth/verify", json={"token": reset_token})).status_code == 400


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize("token", ["forged", "x" * 43, "a" * 512])
async def test_forged_tokens_are_400(client: httpx.AsyncClient, token: str) -> None:
    assert (await client.post("/auth/verify", json={"token": token})).status_code == 400
    assert (await reset(client, token, NEW_PASSWORD)).status_code == 400


@pytest.mark.usefixtures("app")
async def test_password_reset_sets_the_password_and_ends_every_session(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    first = await register_and_sign_in(client)
    second = await sign_in(client)

    assert (await forgot(client)).status_code == 202
    message = await mail_for(smtp_server, "ada@example.com")
    assert f"{FRONTEND}/reset-password?token=" in text_part(message)
    token = extract_token(message)

    assert (await reset(client, token, NEW_PASSWORD)).status_code == 204

    assert (await password_grant(client, "ada@example.com", PASSWORD)).status_code == 400
    assert (await password_grant(client, "ada@example.com", NEW_PASSWORD)).status_code == 200
    for tokens in (first, second):
        assert (await refresh(client, tokens["refresh_token"])).status_code == 400
        me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 401
    assert (await reset(client, token, "yet another fine passphrase")).status_code == 400


@pytest.mark.usefixtures("app")
async def test_weak_new_password_is_422_and_keeps_the_link_usable(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)
    await forgot(client)
    token = extract_token(await mail_for(smtp_server, "ada@example.com"))

    weak = await reset(client, token, "short")

    assert weak.status_code == 422
    assert (await reset(client, token, NEW_PASSWORD)).status_code == 204


@pytest.mark.usefixtures("app")
async def test_newer_reset_request_supersedes_older_links(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)
    await forgot(client)
    older = extract_token(await mail_for(smtp_server, "ada@example.com"))
    smtp_server.clear()
    await forgot(client)
    newer = extract_token(await mail_for(smtp_server, "ada@example.com"))

    assert (await reset(client, older, NEW_PASSWORD)).status_code == 400
    assert (await reset(client, newer, NEW_PASSWORD)).status_code == 204


@pytest.mark.usefixtures("app")
async def test_password_change_voids_outstanding_reset_links(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    tokens = await register_and_sign_in(client)
    await forgot(client)
    token = extract_token(await mail_for(smtp_server, "ada@example.com"))

    changed = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens["access_token"]),
    )

    assert changed.status_code == 204
    assert (await reset(client, token, "yet another fine passphrase")).status_code == 400


@pytest.mark.usefixtures("app")
async def test_email_change_mails_both_addresses_and_voids_old_links(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    tokens = await register_and_sign_in(client)
    await request_verification(client, "ada@example.com")
    old_link = extract_token(await mail_for(smtp_server, "ada@example.com"))
    smtp_server.clear()

    response = await client.patch(
        "/users/me",
        json={"email": "ada@new.example", "current_password": PASSWORD},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 200
    assert response.json()["is_verified"] is False
    messages = await smtp_server.wait_for(2)
    by_recipient = {m["To"]: m for m in messages}
    assert set(by_recipient) == {"ada@example.com", "ada@new.example"}
    assert "ada@new.example" in text_part(by_recipient["ada@example.com"])
    new_link = extract_token(by_recipient["ada@new.example"])
    assert (await client.post("/auth/verify", json={"token": old_link})).status_code == 400
    verified = await client.post("/auth/verify", json={"token": new_link})
    assert verified.status_code == 200
    assert verified.json()["email"] == "ada@new.example"


@pytest.mark.usefixtures("app")
async def test_links_ignore_the_request_host_headers(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)

    await client.post(
        "/auth/password/forgot",
        json={"email": "ada@example.com"},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )

    message = await mail_for(smtp_server, "ada@example.com")
    assert "evil.example" not in text_part(message)
    assert "evil.example" not in html_part(message)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestMailServerDown:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {
            "email_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": _closed_port(),
            "outbox_max_attempts": 2,
            "outbox_retry_base_seconds": 0.05,
        }

    @pytest.mark.usefixtures("app")
    async def test_request_succeeds_and_the_failure_is_logged_without_the_link(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        await register(client)
        caplog.set_level(logging.INFO)

        response = await forgot(client)

        assert response.status_code == 202
        # The outbox tries twice, then gives up and says so.
        for _ in range(100):
            failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
            if failures:
                break
            await asyncio.sleep(0.05)
        assert failures
        assert "example.com" in failures[0].getMessage()  # the recipient's domain only
        assert all("token=" not in r.getMessage() for r in caplog.records)
        assert all("ada@" not in r.getMessage() for r in caplog.records)


class TestThrottling:
    @pytest.fixture
    def settings_overrides(self, smtp_server: SmtpServer) -> dict[str, object]:
        return {
            "email_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "rate_limit_email_address": "2/hour",
            "rate_limit_email_ip": "4/hour",
        }

    @pytest.mark.usefixtures("app")
    async def test_requests_are_limited_per_address_and_per_ip(
        self, client: httpx.AsyncClient
    ) -> None:
        statuses = [(await forgot(client, "ada@example.com")).status_code for _ in range(3)]
        assert statuses == [202, 202, 429]

        # A refused request costs nothing: 2 counted against the IP so far, 2 left.
        statuses = [(await forgot(client, f"u{i}@example.com")).status_code for i in range(3)]
        assert statuses == [202, 202, 429]
