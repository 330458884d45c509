"""Logs are JSON with request ids, and a whole session of use leaves no secret in them."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.observability.conftest import JsonLines
from tests.support.admins import admin_headers, register_client
from tests.support.flows import PASSWORD, bearer, password_grant, refresh, register, sign_in

pytestmark = pytest.mark.usefixtures("app")

WRONG = "definitely the wrong password"
QUERY_CODE = "provider-code-do-not-log"


async def test_a_full_session_logs_request_ids_and_no_secret(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    json_logs: JsonLines,
) -> None:
    await register(client, "ada@example.com")
    first = await sign_in(client, "ada@example.com")
    assert (await client.get("/users/me", headers=bearer(first["access_token"]))).is_success
    second = (await refresh(client, first["refresh_token"])).json()
    assert (await password_grant(client, "ada@example.com", WRONG)).status_code == 400
    assert (
        await client.post("/auth/password/forgot", json={"email": "ada@example.com"})
    ).is_success
    await client.get(f"/auth/oauth/nowhere/callback?code={QUERY_CODE}&state=s")
    root = await admin_headers(client, sessions, superuser=True)
    client_id, client_secret = await register_client(client, root, scopes=["introspect"])
    pair = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    service = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {pair}"},
    )
    assert service.status_code == 200

    secrets = [
        PASSWORD,
        WRONG,
        QUERY_CODE,
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        root["Authorization"].removeprefix("Bearer "),
        client_secret,
        pair,
        service.json()["access_token"],
    ]
    leaked = [secret for secret in secrets if secret in json_logs.text]
    assert leaked == []
    access = [line for line in json_logs.records() if line["logger"] == "app.access"]
    assert len(access) >= 10
    assert all(len(line["request_id"]) == 32 for line in access)
    assert len({line["request_id"] for line in access}) == len(access)


def test_secret_keys_and_bearer_tokens_are_masked(json_logs: JsonLines) -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    structlog.stdlib.get_logger("tests.observability").warning(
        "signing in",
        password="hunter2",
        client_secret="s3cret",
        refresh_token="rt-123",
        form={"code": "abc", "username": "ada"},
        header=f"Bearer {jwt_like}",
    )
    logging.getLogger("tests.observability").warning("got %s", jwt_like)

    text = json_logs.text
    for secret in ("hunter2", "s3cret", "rt-123", '"abc"', jwt_like):
        assert secret not in text
    # Only this test's lines: the app's background work (its outbox dispatcher) logs too.
    [structured, plain] = [r for r in json_logs.records() if r["logger"] == "tests.observability"]
    assert structured["password"] == "[redacted]"
    assert structured["form"] == {"code": "[redacted]", "username": "ada"}
    assert structured["header"] == "Bearer [redacted]"
    assert plain["event"] == "got [redacted]"


async def test_the_service_writes_json_lines_to_stderr(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.get("/health/live", headers={"X-Request-ID": "stderr-check"})

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    [access] = [line for line in lines if line.get("request_id") == "stderr-check"]
    assert access["logger"] == "app.access"
    assert access["level"] == "info"
