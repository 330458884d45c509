"""The browser's part of a sign-in with a provider, through the public API, and small readers
of the resulting state.

    authorization_url, cookies = await start(client, "acme")
    code, state = standin.approve(authorization_url, Identity(sub="1", email="a@example.com"))
    response = await finish(client, "acme", code, state, cookies)
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.repositories import AuditEventRepository, OAuthAccountRepository, UserRepository
from tests.support.admins import update_user
from tests.support.flows import register, sign_in

SERVICE_URL = "http://localhost:8000"
FRONTEND_CALLBACK = "https://app.example.com/oauth/callback"
COOKIE_NAME = "authsvc_oauth"

IdentityT = TypeVar("IdentityT")
IdentityT_contra = TypeVar("IdentityT_contra", contravariant=True)


class Approver(Protocol[IdentityT_contra]):
    """A provider a test can approve an authorization request at (stand-in or fake)."""

    def approve(self, authorization_url: str, identity: IdentityT_contra) -> tuple[str, str]: ...


def own_callback(provider: str) -> str:
    """The service's own callback for `provider`, the default redirect URI."""
    return f"{SERVICE_URL}/auth/oauth/{provider}/callback"


def query_of(url: str) -> dict[str, str]:
    """The query parameters of `url`, each expected once."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {name: values[0] for name, values in query.items()}


def cookies_set_by(response: httpx.Response) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        cookies.update({name: morsel.value for name, morsel in parsed.items()})
    return cookies


async def start(
    client: httpx.AsyncClient,
    provider: str,
    redirect_uri: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Begin a flow: the authorization URL and the cookies the browser was given. The client's
    own cookie jar is emptied, so that each test says which cookies the callback carries."""
    params = {} if redirect_uri is None else {"redirect_uri": redirect_uri}
    response = await client.get(f"/auth/oauth/{provider}/authorize", params=params, headers=headers)
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return response.json()["authorization_url"], cookies_set_by(response)


async def finish(
    client: httpx.AsyncClient,
    provider: str,
    code: str | None,
    state: str | None,
    cookies: dict[str, str],
    headers: dict[str, str] | None = None,
    **params: str,
) -> httpx.Response:
    """The provider's redirect back to the service's callback, carrying exactly `cookies`."""
    query = {"code": code, "state": state, **params}
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    client.cookies.clear()
    return await client.get(
        f"/auth/oauth/{provider}/callback",
        params={name: value for name, value in query.items() if value is not None},
        headers=headers,
    )


async def sign_in_with(
    client: httpx.AsyncClient,
    provider_name: str,
    provider: Approver[IdentityT],
    identity: IdentityT,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A whole flow: start (as a signed-in user with `headers`), the user approves as
    `identity`, the callback."""
    authorization_url, cookies = await start(client, provider_name, headers=headers)
    code, state = provider.approve(authorization_url, identity)
    return await finish(client, provider_name, code, state, cookies)


async def tokens_from(
    client: httpx.AsyncClient,
    provider_name: str,
    provider: Approver[IdentityT],
    identity: IdentityT,
) -> dict[str, Any]:
    """A whole flow that must sign the user in: the token response."""
    response = await sign_in_with(client, provider_name, provider, identity)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "access_token" in body, body
    return body


# --- building and reading state --------------------------------------------------------------

Sessions = async_sessionmaker[AsyncSession]


async def verified_account(
    client: httpx.AsyncClient, sessions: Sessions, email: str = "ada@example.com"
) -> dict[str, Any]:
    """A local account with a password and a verified address, signed in: its tokens."""
    await register(client, email)
    async with sessions() as session:
        await update_user(session, email, is_verified=True)
    return await sign_in(client, email)


async def audit_count(sessions: Sessions, event_type: str) -> int:
    async with sessions() as session:
        return await AuditEventRepository(session).count(type=event_type)


async def user_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return await UserRepository(session).count()


async def link_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return await OAuthAccountRepository(session).count()
