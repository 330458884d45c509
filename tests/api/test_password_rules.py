"""Passwords over HTTP: the guess estimate with the words attackers of this service try, the
422 naming the field that held the password, one password however Unicode spells it, and the
mail telling the owner that their password was changed."""

from __future__ import annotations

import unicodedata
from email.message import EmailMessage
from typing import Any

import argon2
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.repositories import UserRepository
from tests.mail.smtp_server import (
    SmtpServer,
    extract_token,
    html_part,
    sending_to,
    smtp_server,
    text_part,
)
from tests.support.admins import admin_headers
from tests.support.flows import (
    PASSWORD,
    assert_problem,
    bearer,
    password_grant,
    register,
    register_and_sign_in,
    sign_in,
    user_id,
)
from tests.support.state import forge_user

__all__ = ["smtp_server"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.usefixtures("app")

Sessions = async_sessionmaker[AsyncSession]

# Long enough for the 15-character minimum, on no list, and still guessed in few tries.
EASILY_GUESSED = [
    "passwordpassword",
    "1234567890123456",
    "Password1234567!",
    "aaaaaaaaaaaaaaaa",
    "qwertyuiopasdfghjkl",
]
NEW_PASSWORD = "a brand new passphrase for ada"
CAFE_NFC = unicodedata.normalize("NFC", "un café crème sur la terrasse")
CAFE_NFD = unicodedata.normalize("NFD", CAFE_NFC)


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, object]:
    return sending_to(smtp_server)


def refusal_reasons(response: httpx.Response, field: str) -> list[str]:
    """The reasons of a weak-password 422, each of which must point at `field`."""
    body = assert_problem(response, 422)
    assert body["type"] == "urn:authsvc:problem:weak-password"
    assert body["errors"], body
    assert {error["pointer"] for error in body["errors"]} == {f"/{field}"}
    reasons = [str(error["detail"]) for error in body["errors"]]
    assert all(reasons)
    return reasons


async def register_with(
    client: httpx.AsyncClient, password: str, email: str = "ada@example.com"
) -> httpx.Response:
    return await client.post("/auth/register", json={"email": email, "password": password})


async def change_password(
    client: httpx.AsyncClient, tokens: dict[str, Any], new_password: str
) -> httpx.Response:
    return await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=bearer(tokens["access_token"]),
    )


async def user_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return await UserRepository(session).count()


async def only_mail(smtp_server: SmtpServer) -> EmailMessage:
    (message,) = await smtp_server.wait_for(1)
    return message


# --- the guess estimate --------------------------------------------------------------------


@pytest.mark.parametrize("password", EASILY_GUESSED)
async def test_easily_guessed_long_passwords_are_refused_naming_the_password_field(
    client: httpx.AsyncClient, sessions: Sessions, password: str
) -> None:
    response = await register_with(client, password)

    refusal_reasons(response, "password")
    assert await user_count(sessions) == 0


async def test_a_password_built_from_the_service_name_is_refused(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    reasons = refusal_reasons(await register_with(client, "welcome to authsvc"), "password")

    assert any('"authsvc"' in reason for reason in reasons)
    assert await user_count(sessions) == 0
    # The same built from a name this service does not go by is fine.
    assert (await register_with(client, "welcome to acme corp")).status_code == 201


async def test_a_password_built_from_the_email_address_is_refused(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    # "bob" is too short for the containment rule; the estimate still counts it.
    response = await register_with(client, "bluefinch bob 2024", "bob@bluefinch.example")

    assert any("email address" in reason for reason in refusal_reasons(response, "password"))
    assert (await register_with(client, "bluefinch bob 2024", "ada@example.com")).status_code == 201


class TestConfiguredContextWords:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"password_context_words": ["Acme Corp"], "service_name": "Nightjar"}

    async def test_a_password_built_from_a_configured_word_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        reasons = refusal_reasons(await register_with(client, "welcome to acme corp"), "password")

        assert any('"acme corp"' in reason for reason in reasons)

    async def test_the_service_name_is_the_configured_one(self, client: httpx.AsyncClient) -> None:
        refusal_reasons(await register_with(client, "welcome to nightjar"), "password")
        assert (await register_with(client, "welcome to authsvc")).status_code == 201


async def test_a_weak_new_password_is_refused_naming_new_password(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    tokens = await register_and_sign_in(client)
    await client.post("/auth/password/forgot", json={"email": "ada@example.com"})
    reset_token = extract_token(await only_mail(smtp_server))

    changed = await change_password(client, tokens, "passwordpassword")
    reset = await client.post(
        "/auth/password/reset", json={"token": reset_token, "new_password": "1234567890123456"}
    )

    refusal_reasons(changed, "new_password")
    refusal_reasons(reset, "new_password")
    await sign_in(client)


async def test_a_weak_password_set_by_an_administrator_is_refused_naming_password(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    ada = await user_id(client, bearer((await register_and_sign_in(client))["access_token"]))

    response = await client.patch(
        f"/admin/users/{ada}", json={"password": "Password1234567!"}, headers=root
    )

    refusal_reasons(response, "password")


# --- one password however Unicode spells it ------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "typed"), [(CAFE_NFC, CAFE_NFD), (CAFE_NFD, CAFE_NFC)], ids=["nfc", "nfd"]
)
async def test_a_password_signs_in_however_its_accents_are_typed(
    client: httpx.AsyncClient, chosen: str, typed: str
) -> None:
    await register(client, password=chosen)

    await sign_in(client, password=typed)


async def test_a_hash_made_before_normalisation_signs_in_and_is_replaced(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    await register(client)
    # What the service stored before it normalised: the password exactly as it was typed.
    old_hash = argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash(CAFE_NFD)
    async with sessions() as session:
        # Forged: no use case stores such a hash any more.
        await forge_user(session, "ada@example.com", hashed_password=old_hash)

    await sign_in(client, password=CAFE_NFD)

    async with sessions() as session:
        user = await UserRepository(session).get_by_email("ada@example.com")
    assert user is not None
    assert user.hashed_password not in (None, old_hash)
    await sign_in(client, password=CAFE_NFC)
    assert (await password_grant(client, "ada@example.com", PASSWORD)).status_code == 400


# --- the owner is told ---------------------------------------------------------------------


def assert_password_changed_mail(message: EmailMessage, *secrets: str) -> None:
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your password was changed"
    for part in (text_part(message), html_part(message)):
        assert "password of your account was just changed" in part
        assert all(secret not in part for secret in secrets)


async def test_the_owner_is_mailed_after_a_password_change(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    tokens = await register_and_sign_in(client)

    response = await change_password(client, tokens, NEW_PASSWORD)

    assert response.status_code == 204
    assert_password_changed_mail(await only_mail(smtp_server), PASSWORD, NEW_PASSWORD)


async def test_the_owner_is_mailed_after_a_password_reset(
    client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(client)
    await client.post("/auth/password/forgot", json={"email": "ada@example.com"})
    token = extract_token(await only_mail(smtp_server))
    smtp_server.clear()

    response = await client.post(
        "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    assert_password_changed_mail(await only_mail(smtp_server), token, NEW_PASSWORD)


async def test_the_owner_is_mailed_when_an_administrator_sets_the_password(
    client: httpx.AsyncClient, sessions: Sessions, smtp_server: SmtpServer
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    ada = await user_id(client, bearer((await register_and_sign_in(client))["access_token"]))

    response = await client.patch(
        f"/admin/users/{ada}", json={"password": NEW_PASSWORD}, headers=root
    )

    assert response.status_code == 200
    assert_password_changed_mail(await only_mail(smtp_server), NEW_PASSWORD)
