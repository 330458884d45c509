"""Target 1: `GET /users/me` throughput >= a bare FastAPI endpoint doing one PK SELECT.

Closed loop, same connections and window for both, interleaved baseline-service-baseline.
"""

from __future__ import annotations

import uuid

from bench.context import TOKEN_USERS, BenchContext, login_tokens
from bench.http_client import Target, fetch, get_request
from bench.interleave import compare, rps
from bench.loadgen import LoadResult, Rotate, closed_loop
from bench.report import Bound, Check, ScenarioOutcome, flags_of

TARGET = Bound(">=", 1.0)


async def run(ctx: BenchContext) -> ScenarioOutcome:
    config = ctx.config
    database = await ctx.main_database()
    numbers = list(TOKEN_USERS)
    async with ctx.service(database) as service, ctx.baseline(database) as baseline:
        tokens = await login_tokens(service.target, numbers)
        ids = await database.user_ids(numbers)
        await _same_user(service.target, baseline.target, tokens[0], ids[numbers[0]])
        me = Rotate([get_request("/users/me", service.target, bearer=token) for token in tokens])
        bare = Rotate([get_request(f"/users/{ids[n]}", baseline.target) for n in numbers])

        async def bare_leg(seconds: float, warmup: float) -> LoadResult:
            return await closed_loop(
                baseline.target,
                bare,
                label="baseline GET /users/{id}",
                connections=config.me_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=baseline.cpu_seconds,
            )

        async def me_leg(seconds: float, warmup: float) -> LoadResult:
            return await closed_loop(
                service.target,
                me,
                label="service GET /users/me",
                connections=config.me_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=service.cpu_seconds,
            )

        comparison = await compare(
            bare_leg,
            me_leg,
            reference_label="baseline GET /users/{id}",
            measured_label="service GET /users/me",
            rounds=config.rounds,
            duration=config.duration,
            warmup=config.warmup,
            settle=config.settle,
        )

    base, measured = comparison.reference, comparison.measured
    check = Check(
        scenario="me",
        title="GET /users/me req/s vs bare PK-select endpoint",
        measured=(
            f"{measured.rps:.0f} vs {base.rps:.0f} req/s; p50 {measured.latency.p50_ms:.1f} vs "
            f"{base.latency.p50_ms:.1f} ms; p99 {measured.latency.p99_ms:.1f} vs "
            f"{base.latency.p99_ms:.1f} ms; {comparison.spread(rps)}"
        ),
        ratio=comparison.ratio(rps),
        target=TARGET,
        flags=flags_of(comparison.legs),
        cpu_ratio=comparison.cpu_ratio(),
    )
    details = {"round ratios": [round(r, 3) for r in comparison.round_ratios(rps)]}
    return ScenarioOutcome("me", [check], [base, measured], details, comparison.legs)


async def _same_user(service: Target, baseline: Target, token: str, user_id: uuid.UUID) -> None:
    """Both endpoints must answer the same user with the same fields, or the race is unfair."""
    mine = await fetch(service, get_request("/users/me", service, bearer=token))
    bare = await fetch(baseline, get_request(f"/users/{user_id}", baseline))
    if mine.status != 200 or bare.status != 200:
        raise RuntimeError(f"set-up request failed: {mine.status} {mine.body!r} / {bare.status}")
    mine_body, bare_body = mine.json(), bare.json()
    if mine_body["id"] != bare_body["id"] or set(mine_body) != set(bare_body):
        raise RuntimeError(f"endpoints disagree: {mine_body} vs {bare_body}")
