"""Helpers that build state the way a client does: through the public HTTP API."""

from __future__ import annotations

import base64
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


async def register(
    client: httpx.AsyncClient,
    email: str = "ada@example.com",
    password: str = PASSWORD,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def password_grant(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **extra},
    )


async def sign_in(
    client: httpx.AsyncClient, username: str = "ada@example.com", password: str = PASSWORD
) -> dict[str, Any]:
    response = await password_grant(client, username, password)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def introspect(
    client: httpx.AsyncClient, caller: dict[str, str] | None, token: str, **form: str
) -> dict[str, Any]:
    """The introspection answer about `token`, asked by the client with `caller` headers."""
    response = await client.post(
        "/auth/introspect", data={"token": token, **form}, headers=caller or {}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def register_and_sign_in(
    client: httpx.AsyncClient, email: str = "ada@example.com", **extra: Any
) -> dict[str, Any]:
    await register(client, email, **extra)
    return await sign_in(client, email)


def basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic client authentication (client_secret_basic)."""
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """The id of the user the bearer `headers` belong to."""
    response = await client.get("/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """An RFC 9457 problem with one of `statuses` (and no token in it); its body."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == response.status_code
    assert "access_token" not in body
    return body
