"""One request of each kind that needs the database, made ready before a fault strikes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.admins import admin_headers, register_client
from tests.support.flows import assert_problem, basic, bearer, password_grant, register_and_sign_in

Call = Callable[[], Awaitable[httpx.Response]]


async def database_calls(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Call]:
    """A password grant, `/users/me` and an introspection (by a resource server, of a user's
    access token), by name; the account, token and client they need exist already."""
    access_token = (await register_and_sign_in(client, "ada@example.com"))["access_token"]
    root = await admin_headers(client, sessions, superuser=True)
    resource_server = basic(*await register_client(client, root, name="api", scopes=["introspect"]))
    return {
        "password grant": lambda: password_grant(client, "ada@example.com"),
        "users/me": lambda: client.get("/users/me", headers=bearer(access_token)),
        "introspection": lambda: client.post(
            "/auth/introspect", data={"token": access_token}, headers=resource_server
        ),
    }


def assert_unavailable(response: httpx.Response) -> None:
    """503 problem+json with a `Retry-After`, and nothing of the failure's insides."""
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text


def assert_served(name: str, response: httpx.Response) -> None:
    assert response.status_code == 200, (name, response.text)
    if name == "introspection":
        assert response.json()["active"] is True
