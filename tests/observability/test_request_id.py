"""X-Request-ID: echoed when sane, generated otherwise, and on every log line."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from fastapi import FastAPI

from tests.observability.conftest import JsonLines
from tests.support.flows import assert_problem

pytestmark = pytest.mark.usefixtures("app")

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "req-42.abc_DEF"})

    assert response.headers["x-request-id"] == "req-42.abc_DEF"


async def test_a_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/health/live")
    second = await client.get("/health/live")

    assert GENERATED.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "unsafe",
    ["a" * 129, "has space", "new\\nline", "<script>", "semi;colon", ""],
)
async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient, unsafe: str) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": unsafe})

    assert GENERATED.fullmatch(response.headers["x-request-id"])


async def test_error_responses_carry_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route", headers={"X-Request-ID": "abc"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "abc"


async def test_the_access_line_has_the_request_id_and_no_query_string(
    client: httpx.AsyncClient, json_logs: JsonLines
) -> None:
    await client.get("/health/live?token=sekrit", headers={"X-Request-ID": "trace-1"})

    [access] = [line for line in json_logs.records() if line["logger"] == "app.access"]
    assert access["request_id"] == "trace-1"
    assert access["event"] == "request"
    assert access["method"] == "GET"
    assert access["path"] == "/health/live"
    assert access["status"] == 200
    assert access["level"] == "info"
    assert isinstance(access["duration_ms"], float)
    assert "timestamp" in access
    assert "sekrit" not in json_logs.text


async def test_the_request_id_is_not_left_bound_after_the_request(
    client: httpx.AsyncClient, json_logs: JsonLines
) -> None:
    await client.get("/health/live", headers={"X-Request-ID": "trace-2"})
    logging.getLogger("tests.observability").warning("after the request")

    [after] = [line for line in json_logs.records() if line["event"] == "after the request"]
    assert "request_id" not in after
    assert after["logger"] == "tests.observability"


async def test_an_unhandled_error_still_carries_the_request_id(
    app: FastAPI, json_logs: JsonLines
) -> None:
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/boom", boom)
    # As a server would: answer the 500, do not re-raise the error into the client.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/test-only/boom", headers={"X-Request-ID": "trace-500"})

    body = assert_problem(response, 500)
    assert response.headers["x-request-id"] == "trace-500"
    assert body["request_id"] == "trace-500"  # for the user to quote in a support request
    [error] = [line for line in json_logs.records() if line["level"] == "error"]
    assert error["request_id"] == "trace-500"
    assert "a bug" in error["exception"]
    [access] = [line for line in json_logs.records() if line["logger"] == "app.access"]
    assert (access["status"], access["request_id"]) == (500, "trace-500")
