"""Errors leave the service as RFC 9457 problem+json, whatever raised them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from app.api.problems import install_problem_handlers
from app.errors import Conflict, NotFound, PermissionDenied, RateLimited
from app.repositories.common.base import decode_cursor
from tests.support.flows import assert_problem


class Payload(BaseModel):
    email: str = Field(min_length=3)
    age: int


def build_probe_app() -> FastAPI:
    """A tiny app with the service's error handlers and one route per kind of failure."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/echo")
    async def echo(payload: Payload) -> Payload:
        return payload

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        raise NotFound(f"item {item_id} does not exist")

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("email already registered")

    @app.get("/forbidden")
    async def forbidden() -> None:
        raise PermissionDenied

    @app.get("/throttled")
    async def throttled() -> None:
        raise RateLimited(retry_after_seconds=42)

    @app.get("/cursor")
    async def cursor(value: str) -> None:
        decode_cursor(value)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail: password=hunter2")

    return app


@pytest.fixture
async def probe() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_probe_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_validation_errors_list_each_field(probe: httpx.AsyncClient) -> None:
    response = await probe.post("/echo", json={"email": "x", "age": "old"})

    body = assert_problem(response, 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    pointers = {error["pointer"] for error in errors}
    assert pointers == {"#/email", "#/age"}
    assert all(error["detail"] for error in errors)


async def test_malformed_json_is_a_422_problem(probe: httpx.AsyncClient) -> None:
    response = await probe.post(
        "/echo", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert_problem(response, 422)


async def test_bad_path_parameter_is_a_422_problem(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/items/abc")

    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"location": "path", "field": "item_id", "detail": body["errors"][0]["detail"]}  # type: ignore[index]
    ]


async def test_domain_not_found_is_404(probe: httpx.AsyncClient) -> None:
    body = assert_problem(await probe.get("/items/7"), 404)
    assert body["detail"] == "item 7 does not exist"
    assert body["type"] == "urn:authsvc:problem:not-found"


async def test_unknown_route_is_404(probe: httpx.AsyncClient) -> None:
    assert_problem(await probe.get("/nowhere"), 404)


async def test_wrong_method_is_405(probe: httpx.AsyncClient) -> None:
    response = await probe.delete("/conflict")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_conflict_and_permission_denied(probe: httpx.AsyncClient) -> None:
    assert_problem(await probe.get("/conflict"), 409)
    assert_problem(await probe.get("/forbidden"), 403)


async def test_rate_limited_carries_retry_after(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/throttled")
    assert_problem(response, 429)
    assert response.headers["retry-after"] == "42"


async def test_forged_cursor_is_400(probe: httpx.AsyncClient) -> None:
    assert_problem(await probe.get("/cursor", params={"value": "%%%"}), 400)


async def test_unexpected_error_hides_its_details(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/boom")

    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert body["detail"] == "An unexpected error occurred."
