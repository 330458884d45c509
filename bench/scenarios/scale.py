"""Target 4: sign-ins and token checks as fast with 1M users as with 1k.

Two databases seeded in SQL (all rows share one argon2id hash of the bench password): 1k
users, and 1k grown to 1M, both VACUUM ANALYZEd and checkpointed. One service per database,
both pinned to the server CPU, interleaved small-large-small, for `/users/me` (closed loop,
tokens of users spread over the table) and for password grants (distinct users spread over
the table).
"""

from __future__ import annotations

import random
from typing import Any

from bench.context import BenchContext, login_request, login_tokens
from bench.http_client import get_request
from bench.interleave import Comparison, Leg, compare, rps
from bench.loadgen import LoadResult, RequestSource, Rotate, closed_loop
from bench.report import Bound, Check, ScenarioOutcome, flags_of
from bench.servers import RunningServer

TARGET = Bound(">=", 0.95)
TOKEN_USER_COUNT = 32
LARGE_LOGIN_USERS = 5_000


async def run(ctx: BenchContext) -> ScenarioOutcome:
    config = ctx.config
    small_rows, large_rows = config.scale_small_rows, config.scale_large_rows
    small_db, large_db = ctx.database("_1k"), ctx.database("_1m")
    await ctx.prepare(small_db, small_rows)
    await ctx.prepare(large_db, small_rows)
    grow_seconds = await large_db.seed_users(small_rows + 1, large_rows, ctx.password_hash)
    await large_db.settle()

    rng = random.Random(20_261_123)  # noqa: S311 - picks users, not secrets
    small_numbers = rng.sample(range(1, small_rows + 1), small_rows)
    small_tokens = small_numbers[:TOKEN_USER_COUNT]
    small_logins = small_numbers[TOKEN_USER_COUNT:]
    large_tokens = rng.sample(range(1, large_rows + 1), TOKEN_USER_COUNT)
    large_logins = rng.sample(range(small_rows + 1, large_rows + 1), LARGE_LOGIN_USERS)

    async def versus(
        what: str,
        small: tuple[RunningServer, RequestSource],
        large: tuple[RunningServer, RequestSource],
        connections: int,
    ) -> Comparison:
        def leg(side: tuple[RunningServer, RequestSource], label: str) -> Leg:
            server, source = side

            async def run_leg(seconds: float, warmup: float) -> LoadResult:
                return await closed_loop(
                    server.target,
                    source,
                    label=label,
                    connections=connections,
                    duration=seconds,
                    warmup=warmup,
                    cpu_probe=server.cpu_seconds,
                )

            return run_leg

        small_label, large_label = f"{what}, {small_rows} users", f"{what}, {large_rows} users"
        return await compare(
            leg(small, small_label),
            leg(large, large_label),
            reference_label=small_label,
            measured_label=large_label,
            rounds=config.rounds,
            duration=config.duration,
            warmup=config.warmup,
            settle=config.settle,
        )

    async with (
        ctx.service(small_db, port_offset=2, name="service-small") as small,
        ctx.service(large_db, port_offset=3, name="service-large") as large,
    ):
        small_me = await _me_requests(small, small_tokens)
        large_me = await _me_requests(large, large_tokens)
        me = await versus("/users/me", (small, small_me), (large, large_me), config.me_connections)
        small_login = Rotate([login_request(small.target, n) for n in small_logins])
        large_login = Rotate([login_request(large.target, n) for n in large_logins])
        login = await versus(
            "login", (small, small_login), (large, large_login), config.login_connections
        )

    sizes = f"{_short(large_rows)} vs {_short(small_rows)} users"
    login_check = _ratio_check(f"password grants/s, {sizes}", login)
    login_check.flags.extend(
        f"{rotation} login users were reused"
        for rotation, source in (("small", small_login), ("large", large_login))
        if source.wrapped
    )
    checks = [_ratio_check(f"token checks (/users/me) req/s, {sizes}", me), login_check]
    details: dict[str, Any] = {
        "round ratios /users/me": [round(r, 3) for r in me.round_ratios(rps)],
        "round ratios login": [round(r, 3) for r in login.round_ratios(rps)],
        f"seconds to grow {small_rows} -> {large_rows} rows": round(grow_seconds, 1),
    }
    loads = [me.reference, me.measured, login.reference, login.measured]
    return ScenarioOutcome("scale", checks, loads, details, [*me.legs, *login.legs])


async def _me_requests(server: RunningServer, numbers: list[int]) -> Rotate:
    tokens = await login_tokens(server.target, numbers)
    return Rotate([get_request("/users/me", server.target, bearer=token) for token in tokens])


def _short(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def _ratio_check(title: str, comparison: Comparison) -> Check:
    large, small = comparison.measured, comparison.reference
    return Check(
        scenario="scale",
        title=title,
        measured=(
            f"{large.rps:.1f} vs {small.rps:.1f} /s; p99 {large.latency.p99_ms:.1f} vs "
            f"{small.latency.p99_ms:.1f} ms; {comparison.spread(rps)}"
        ),
        ratio=comparison.ratio(rps),
        target=TARGET,
        flags=flags_of(comparison.legs),
        cpu_ratio=comparison.cpu_ratio(),
    )
