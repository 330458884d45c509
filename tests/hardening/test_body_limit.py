"""Request bodies over AUTH_MAX_BODY_BYTES get 413 problem+json, without being buffered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.api.hardening import BodySizeLimitMiddleware

LIMIT = 64 * 1024
PASSWORD = "correct horse battery staple"


def assert_payload_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413
    assert problem["title"] == "Request Entity Too Large"
    assert problem["type"].endswith("payload-too-large")
    assert str(LIMIT) in problem["detail"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_declared_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    body = {"email": "ada@example.com", "password": PASSWORD, "full_name": "A" * LIMIT}

    response = await client.post("/auth/register", json=body)

    assert_payload_too_large(response)


async def test_chunked_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "ada@example.com", "full_name": "'
        for _ in range(10):
            yield b"A" * 8192
        yield b'"}'

    response = await client.post(
        "/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers  # really sent chunked
    assert_payload_too_large(response)


async def test_chunked_form_body_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"grant_type=password&username=ada&password="
        for _ in range(10):
            yield b"A" * 8192

    response = await client.post(
        "/auth/token",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert_payload_too_large(response)


async def test_bodies_within_the_limit_work(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "bob@example.com", '
        yield f'"password": "{PASSWORD}"}}'.encode()

    plain = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    chunked = await client.post(
        "/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )

    assert plain.status_code == 201, plain.text
    assert chunked.status_code == 201, chunked.text


class TestSmallerLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"max_body_bytes": 2048}

    async def test_the_limit_is_a_setting(self, client: httpx.AsyncClient) -> None:
        body = {"email": "ada@example.com", "password": PASSWORD, "full_name": "A" * 2048}

        response = await client.post("/auth/register", json=body)

        assert response.status_code == 413
        assert "2048" in response.json()["detail"]


async def test_an_endless_body_is_not_read_past_the_limit() -> None:
    """A client streaming forever costs at most one chunk beyond the limit."""
    reads = 0
    sent: list[Message] = []

    async def endless() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass

    middleware = BodySizeLimitMiddleware(reads_everything, max_bytes=4096)
    await middleware({"type": "http", "headers": []}, endless, send)

    assert reads == 5
    assert sent[0]["status"] == 413
