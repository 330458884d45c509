"""Target 1: `GET /users/me` throughput >= a bare FastAPI endpoint doing one PK SELECT.

Closed loop, same connections and window for both, interleaved baseline-service-baseline.
"""

from __future__ import annotations

import uuid

from bench.context import TOKEN_USERS, BenchContext, login_tokens
from bench.http_client import Target, fetch, get_request
from bench.loadgen import Rotate
from bench.report import Bound, ScenarioOutcome
from bench.scenarios.baseline_race import race_against_baseline

TARGET = Bound(">=", 1.0)


async def run(ctx: BenchContext) -> ScenarioOutcome:
    database = await ctx.main_database()
    numbers = list(TOKEN_USERS)
    async with ctx.service(database) as service, ctx.baseline(database) as baseline:
        tokens = await login_tokens(service.target, numbers)
        ids = await database.user_ids(numbers)
        await _same_user(service.target, baseline.target, tokens[0], ids[numbers[0]])
        return await race_against_baseline(
            ctx,
            scenario="me",
            title="GET /users/me req/s vs bare PK-select endpoint",
            service=service,
            requests=Rotate(
                [get_request("/users/me", service.target, bearer=token) for token in tokens]
            ),
            label="service GET /users/me",
            baseline=baseline,
            bare=Rotate([get_request(f"/users/{ids[n]}", baseline.target) for n in numbers]),
            target=TARGET,
        )


async def _same_user(service: Target, baseline: Target, token: str, user_id: uuid.UUID) -> None:
    """Both endpoints must answer the same user with the same fields, or the race is unfair."""
    mine = await fetch(service, get_request("/users/me", service, bearer=token))
    bare = await fetch(baseline, get_request(f"/users/{user_id}", baseline))
    if mine.status != 200 or bare.status != 200:
        raise RuntimeError(f"set-up request failed: {mine.status} {mine.body!r} / {bare.status}")
    mine_body, bare_body = mine.json(), bare.json()
    if mine_body["id"] != bare_body["id"] or set(mine_body) != set(bare_body):
        raise RuntimeError(f"endpoints disagree: {mine_body} vs {bare_body}")
