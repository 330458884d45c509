"""RFC 7662 introspection throughput next to a bare FastAPI endpoint doing one PK SELECT.

Closed loop, same connections and window for both, interleaved baseline-service-baseline.
Each introspection authenticates the calling client (HTTP Basic, one lookup) and checks a
user's access token against the database (one query): the work a resource server delegates.
The issue sets no ratio for this; the bound below is ours, to notice regressions.
"""

from __future__ import annotations

import base64

from app.security.client_secrets import client_secret_digest
from bench.context import TOKEN_USERS, BenchContext, login_tokens
from bench.http_client import Target, fetch, form_request, get_request
from bench.loadgen import Rotate
from bench.report import Bound, ScenarioOutcome
from bench.scenarios.baseline_race import race_against_baseline

TARGET = Bound(">=", 0.6)
CLIENT_ID = "bench-resource-server"
CLIENT_SECRET = "bench-resource-server-secret-0123456789abcdef"


def introspection_request(target: Target, token: str) -> bytes:
    credentials = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    return form_request(
        "/auth/introspect",
        target,
        {"token": token, "token_type_hint": "access_token"},
        headers={"Authorization": f"Basic {credentials}"},
    )


async def run(ctx: BenchContext) -> ScenarioOutcome:
    database = await ctx.main_database()
    await database.add_service_client(
        CLIENT_ID, client_secret_digest(CLIENT_SECRET), ["introspect"]
    )
    numbers = list(TOKEN_USERS)
    async with ctx.service(database) as service, ctx.baseline(database) as baseline:
        tokens = await login_tokens(service.target, numbers)
        ids = await database.user_ids(numbers)
        answer = await fetch(service.target, introspection_request(service.target, tokens[0]))
        if answer.status != 200 or answer.json().get("active") is not True:
            raise RuntimeError(f"introspection set-up failed: {answer.status} {answer.body!r}")
        return await race_against_baseline(
            ctx,
            scenario="introspect",
            title="POST /auth/introspect req/s vs bare PK-select endpoint",
            service=service,
            requests=Rotate([introspection_request(service.target, token) for token in tokens]),
            label="service POST /auth/introspect",
            baseline=baseline,
            bare=Rotate([get_request(f"/users/{ids[n]}", baseline.target) for n in numbers]),
            target=TARGET,
        )
