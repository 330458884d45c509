"""Sign-in budgets hold under parallel, distributed and patient attackers (issue 14, items 1-3).

Limits are reservations: N parallel attempts against a limit L evaluate at most L. Failures
count per (account, IP), per account and per IP; a stranger cannot lock the owner out; a
completed password reset or change starts the account's counts afresh; `current_password`
checks draw on the same budgets; one-time-token redemptions are counted per IP.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent
from tests.mail.smtp_server import SmtpServer, extract_token, smtp_server, text_part
from tests.support.attempts import client_at, count_events, in_parallel, statuses
from tests.support.flows import PASSWORD, bearer, password_grant, register, sign_in

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest

WRONG = "definitely the wrong password"
NEW_PASSWORD = "a brand new passphrase for ada"
ATTACKER_IP = "203.0.113.66"
OWNER_IP = "198.51.100.7"


def mail_through(smtp_server: SmtpServer, **limits: str) -> dict[str, object]:
    """Settings that send mail to the test's SMTP server, with these rate limits."""
    return {
        "email_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        **limits,
    }


class TestParallelAttempts:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {
            "rate_limit_login_account_ip": "10/15 minutes",
            "rate_limit_login_account": "100/hour",
            "rate_limit_login_ip": "100/15 minutes",
        }

    async def test_50_parallel_wrong_passwords_evaluate_at_most_the_limit(
        self, app: FastAPI, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with client_at(app, ATTACKER_IP) as client:
            await register(client, "ada@example.com")
            counted = await in_parallel(
                50, lambda _: password_grant(client, "ada@example.com", WRONG)
            )

        assert counted == {400: 10, 429: 40}
        assert await count_events(sessions) == 10

    async def test_150_parallel_failures_from_one_ip_evaluate_at_most_the_ip_limit(
        self, app: FastAPI, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with client_at(app, ATTACKER_IP) as client:
            counted = await in_parallel(
                150, lambda i: password_grant(client, f"nobody{i}@example.com", WRONG)
            )

        assert counted == {400: 100, 429: 50}
        assert await count_events(sessions) == 100

    async def test_email_and_username_share_the_account_budget(
        self, app: FastAPI, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with client_at(app, ATTACKER_IP) as client:
            await register(client, "ada@example.com", username="ada")
            by_name = [await password_grant(client, name, WRONG) for name in ["ada"] * 6]
            by_email = [await password_grant(client, "ADA@example.com", WRONG) for _ in range(6)]

        assert statuses(by_name + by_email) == {400: 10, 429: 2}


class TestNoLockout:
    @pytest.fixture
    def settings_overrides(self, smtp_server: SmtpServer) -> dict[str, object]:
        return mail_through(
            smtp_server,
            rate_limit_login_account_ip="3/15 minutes",
            rate_limit_login_account="6/hour",
            rate_limit_login_ip="100/15 minutes",
        )

    async def test_a_stranger_cannot_lock_the_owner_out(self, app: FastAPI) -> None:
        async with client_at(app, ATTACKER_IP) as attacker, client_at(app, OWNER_IP) as owner:
            await register(owner, "ada@example.com")
            for _ in range(3):
                assert (await password_grant(attacker, "ada@example.com", WRONG)).status_code == 400
            assert (await password_grant(attacker, "ada@example.com")).status_code == 429

            assert (await password_grant(owner, "ada@example.com")).status_code == 200

    async def test_the_account_wide_limit_holds_across_addresses_and_mails_the_owner_once(
        self, app: FastAPI, smtp_server: SmtpServer
    ) -> None:
        async with client_at(app, OWNER_IP) as owner:
            await register(owner, "ada@example.com")
            await verify_address(owner, smtp_server)
        smtp_server.clear()

        results = []
        for i in range(10):  # 6 allowed from all addresses together
            async with client_at(app, f"203.0.113.{i}") as attacker:
                results.append(await password_grant(attacker, "ada@example.com", WRONG))
        async with client_at(app, OWNER_IP) as owner:
            owner_attempt = await password_grant(owner, "ada@example.com")

        assert statuses(results) == {400: 6, 429: 4}
        assert owner_attempt.status_code == 429
        notices = await smtp_server.wait_for(1)
        await asyncio.sleep(0.2)  # a second notice would have arrived by now
        assert len(smtp_server.messages) == 1
        assert notices[0]["To"] == "ada@example.com"
        assert "6 times" in text_part(notices[0])
        assert WRONG not in text_part(notices[0])

    async def test_an_unverified_owner_gets_no_notice(
        self, app: FastAPI, smtp_server: SmtpServer
    ) -> None:
        async with client_at(app, OWNER_IP) as owner:
            await register(owner, "ada@example.com")
        for i in range(8):
            async with client_at(app, f"203.0.113.{i}") as attacker:
                await password_grant(attacker, "ada@example.com", WRONG)

        await asyncio.sleep(0.2)
        assert smtp_server.messages == []

    async def test_a_password_reset_clears_every_count_of_the_account(
        self, app: FastAPI, smtp_server: SmtpServer
    ) -> None:
        async with client_at(app, OWNER_IP) as owner:
            await register(owner, "ada@example.com")
        await lock_out_everywhere(app)

        async with client_at(app, OWNER_IP) as owner:
            assert (await password_grant(owner, "ada@example.com")).status_code == 429
            assert await owner.post("/auth/password/forgot", json={"email": "ada@example.com"})
            token = extract_token((await smtp_server.wait_for(1))[0])
            reset = await owner.post(
                "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
            )
            assert reset.status_code == 204
            assert (await password_grant(owner, "ada@example.com", NEW_PASSWORD)).status_code == 200
        async with client_at(app, "203.0.113.0") as earlier_attacker_address:
            signed_in = await password_grant(
                earlier_attacker_address, "ada@example.com", NEW_PASSWORD
            )
            assert signed_in.status_code == 200

    async def test_a_password_change_clears_every_count_of_the_account(self, app: FastAPI) -> None:
        async with client_at(app, OWNER_IP) as owner:
            await register(owner, "ada@example.com")
            tokens = await sign_in(owner, "ada@example.com")
        async with client_at(app, ATTACKER_IP) as attacker:
            for _ in range(3):
                assert (await password_grant(attacker, "ada@example.com", WRONG)).status_code == 400
            assert (await password_grant(attacker, "ada@example.com")).status_code == 429

        async with client_at(app, OWNER_IP) as owner:
            changed = await owner.post(
                "/users/me/password",
                json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                headers=bearer(tokens["access_token"]),
            )
            assert changed.status_code == 204
        # The address that was locked out of this account may try again.
        async with client_at(app, ATTACKER_IP) as same_address:
            signed_in = await password_grant(same_address, "ada@example.com", NEW_PASSWORD)
            assert signed_in.status_code == 200


async def verify_address(client: httpx.AsyncClient, smtp_server: SmtpServer) -> None:
    await client.post("/auth/verify/request", json={"email": "ada@example.com"})
    token = extract_token((await smtp_server.wait_for(1))[0])
    assert (await client.post("/auth/verify", json={"token": token})).status_code == 200


async def lock_out_everywhere(app: FastAPI) -> None:
    """Use up the account-wide budget (6) from two addresses (3 each)."""
    for i in range(2):
        async with client_at(app, f"203.0.113.{i}") as attacker:
            for _ in range(3):
                assert (await password_grant(attacker, "ada@example.com", WRONG)).status_code == 400


class TestCurrentPasswordChecks:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {
            "rate_limit_login_account_ip": "5/15 minutes",
            "rate_limit_login_account": "100/hour",
        }

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/users/me/password", {"new_password": NEW_PASSWORD}),
            ("PATCH", "/users/me", {"email": "new-address@example.com"}),
        ],
        ids=["password-change", "email-change"],
    )
    async def test_a_stolen_token_cannot_guess_the_current_password(
        self,
        app: FastAPI,
        sessions: async_sessionmaker[AsyncSession],
        method: str,
        path: str,
        body: dict[str, str],
    ) -> None:
        async with client_at(app, ATTACKER_IP) as client:
            await register(client, "ada@example.com")
            headers = bearer((await sign_in(client, "ada@example.com"))["access_token"])

            async def guess(i: int) -> httpx.Response:
                json = {**body, "current_password": f"guess number {i} of many"}
                return await client.request(method, path, json=json, headers=headers)

            counted = await in_parallel(40, guess)
            # The budget is shared with sign-in: the real password is refused too, for now.
            right = await client.request(
                method, path, json={**body, "current_password": PASSWORD}, headers=headers
            )

        assert counted == {400: 5, 429: 35}
        assert right.status_code == 429
        async with sessions() as session:
            failures = (
                await session.scalars(select(AuditEvent).where(AuditEvent.type == "login.failed"))
            ).all()
        assert len(failures) == 5
        assert {(e.actor_id, e.details["check"]) for e in failures} == {
            (failures[0].user_id, "current_password")
        }


class TestOneTimeTokenRedemptions:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"rate_limit_token_ip": "5/15 minutes"}

    @pytest.mark.parametrize(
        ("path", "extra"),
        [("/auth/verify", {}), ("/auth/password/reset", {"new_password": NEW_PASSWORD})],
        ids=["verify", "reset"],
    )
    async def test_random_tokens_are_throttled_per_ip_and_audited(
        self,
        app: FastAPI,
        sessions: async_sessionmaker[AsyncSession],
        path: str,
        extra: dict[str, str],
    ) -> None:
        async with client_at(app, ATTACKER_IP) as client:
            counted = await in_parallel(
                50, lambda _: client.post(path, json={"token": uuid.uuid4().hex, **extra})
            )
        async with client_at(app, OWNER_IP) as other_address:
            elsewhere = await other_address.post(path, json={"token": "x" * 43, **extra})

        assert counted == {400: 5, 429: 45}
        assert elsewhere.status_code == 400
        assert await count_events(sessions, "one_time_token.refused") == 6


class TestMailRequests:
    @pytest.fixture
    def settings_overrides(self, smtp_server: SmtpServer) -> dict[str, object]:
        return mail_through(
            smtp_server,
            rate_limit_email_ip="100/hour",
            rate_limit_email_address="3/hour",
            rate_limit_email_address_total="5/hour",
        )

    async def test_a_stranger_cannot_use_up_the_owners_reset_requests(
        self, app: FastAPI, smtp_server: SmtpServer
    ) -> None:
        async with client_at(app, OWNER_IP) as owner:
            await register(owner, "ada@example.com")
        async with client_at(app, ATTACKER_IP) as attacker:
            counted = await in_parallel(
                20,
                lambda _: attacker.post("/auth/password/forgot", json={"email": "ada@example.com"}),
            )
        async with client_at(app, OWNER_IP) as owner:
            mine = await owner.post("/auth/password/forgot", json={"email": "ada@example.com"})

        assert counted == {202: 3, 429: 17}
        assert mine.status_code == 202
        assert len(await smtp_server.wait_for(4)) == 4

    async def test_requests_for_one_address_are_capped_across_addresses(self, app: FastAPI) -> None:
        results = []
        for i in range(8):
            async with client_at(app, f"203.0.113.{i}") as client:
                results.append(
                    await client.post("/auth/password/forgot", json={"email": "ada@example.com"})
                )

        assert statuses(results) == {202: 5, 429: 3}
