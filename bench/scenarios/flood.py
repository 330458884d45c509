"""Target 3: `/users/me` p99 during a login flood <= 2x its p99 without one.

Open loop (fixed rate, latency from the scheduled send time) on `/users/me`, interleaved
alone-flood-alone; during the flood legs a closed loop of password grants (distinct users)
keeps the hash pool busy.
"""

from __future__ import annotations

import asyncio

from bench.context import FLOOD_USERS, TOKEN_USERS, BenchContext, login_request, login_tokens
from bench.http_client import get_request
from bench.interleave import compare, p99
from bench.loadgen import LoadResult, Rotate, closed_loop, merge, open_loop
from bench.report import Bound, Check, ScenarioOutcome, flags_of

TARGET = Bound("<=", 2.0)


async def run(ctx: BenchContext) -> ScenarioOutcome:
    config = ctx.config
    database = await ctx.main_database()
    floods: list[LoadResult] = []
    async with ctx.service(database) as service:
        target = service.target
        tokens = await login_tokens(target, TOKEN_USERS)
        me = Rotate([get_request("/users/me", target, bearer=token) for token in tokens])
        logins = Rotate([login_request(target, number) for number in FLOOD_USERS])

        async def steady(seconds: float, warmup: float) -> LoadResult:
            return await open_loop(
                target,
                me,
                label="GET /users/me",
                rate=config.flood_rate,
                duration=seconds,
                warmup=warmup,
            )

        async def flooded(seconds: float, warmup: float) -> LoadResult:
            result, flood = await asyncio.gather(
                steady(seconds, warmup),
                closed_loop(
                    target,
                    logins,
                    label="login flood POST /auth/token",
                    connections=config.flood_login_connections,
                    duration=seconds,
                    warmup=warmup,
                ),
            )
            floods.append(flood)
            return result

        comparison = await compare(
            steady,
            flooded,
            reference_label="GET /users/me alone",
            measured_label="GET /users/me during login flood",
            rounds=config.rounds,
            duration=config.duration,
            warmup=config.warmup,
            settle=config.settle,
        )

    alone, during = comparison.reference, comparison.measured
    flood = merge("login flood POST /auth/token", floods)
    flags = flags_of([*comparison.legs, *floods])
    if logins.wrapped:
        flags.append("flood users were reused (raise FLOOD_USERS)")
    check = Check(
        scenario="flood",
        title="GET /users/me p99, login flood vs none",
        measured=(
            f"p99 {during.latency.p99_ms:.1f} vs {alone.latency.p99_ms:.1f} ms "
            f"(p50 {during.latency.p50_ms:.1f} vs {alone.latency.p50_ms:.1f}) at "
            f"{config.flood_rate:.0f} req/s; flood {flood.rps:.1f} logins/s; "
            f"{comparison.spread(p99)}"
        ),
        ratio=comparison.ratio(p99),
        target=TARGET,
        flags=flags,
    )
    details = {"round ratios": [round(r, 3) for r in comparison.round_ratios(p99)]}
    return ScenarioOutcome(
        "flood", [check], [alone, during, flood], details, [*comparison.legs, *floods]
    )
