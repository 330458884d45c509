"""Target 2: password-grant throughput >= 0.95x the raw argon2id verify rate.

Raw rate: argon2-cffi verifications with the service's parameters in as many threads as the
service's hash pool, in a process pinned like the server, interleaved raw-login-raw. Every
sign-in is a different seeded user with the correct password: nothing is throttled or cached.
"""

from __future__ import annotations

from typing import Any

from bench.context import LOGIN_USERS, BenchContext, login_request
from bench.interleave import compare, rps
from bench.loadgen import LoadResult, Rotate, closed_loop
from bench.report import Bound, Check, ScenarioOutcome, flags_of
from bench.stats import LatencySummary

TARGET = Bound(">=", 0.95)
RAW_LABEL = "raw argon2id verify (argon2-cffi)"


async def run(ctx: BenchContext) -> ScenarioOutcome:
    config = ctx.config
    database = await ctx.main_database()
    raw_runs: list[dict[str, Any]] = []

    async def raw_leg(seconds: float, warmup: float) -> LoadResult:
        raw = await ctx.raw_argon2(seconds, warmup)
        raw_runs.append(raw)
        return LoadResult(
            label=RAW_LABEL,
            mode="closed",
            window_seconds=raw["window_seconds"],
            connections=raw["threads"],
            completed=raw["verifications"],
            errors=0,
            rps=raw["rate"],
            latency=LatencySummary.of_seconds([]),
            statuses={},
            exceptions={},
            error_samples=[],
            server_cpu_seconds=raw["verifications"] * raw["cpu_ms_per_verify"] / 1000.0,
        )

    async with ctx.service(database) as service:
        logins = Rotate([login_request(service.target, number) for number in LOGIN_USERS])

        async def login_leg(seconds: float, warmup: float) -> LoadResult:
            return await closed_loop(
                service.target,
                logins,
                label="service POST /auth/token password",
                connections=config.login_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=service.cpu_seconds,
            )

        comparison = await compare(
            raw_leg,
            login_leg,
            reference_label=RAW_LABEL,
            measured_label="service POST /auth/token password",
            rounds=config.rounds,
            duration=config.duration,
            warmup=config.warmup,
            settle=config.settle,
        )

    raw, measured = comparison.reference, comparison.measured
    flags = flags_of([measured])
    if logins.wrapped:
        flags.append("login users were reused (raise LOGIN_USERS)")
    check = Check(
        scenario="login",
        title="password grants/s vs raw argon2id verify/s",
        measured=(
            f"{measured.rps:.1f} logins/s (p50 {measured.latency.p50_ms:.0f} ms, "
            f"p99 {measured.latency.p99_ms:.0f} ms) vs {raw.rps:.1f} verify/s "
            f"({raw.connections} threads); {comparison.spread(rps)}"
        ),
        ratio=comparison.ratio(rps),
        target=TARGET,
        flags=flags,
        cpu_ratio=comparison.cpu_ratio(),
    )
    first = raw_runs[0]
    details: dict[str, Any] = {
        "round ratios": [round(r, 3) for r in comparison.round_ratios(rps)],
        "argon2": {k: first[k] for k in ("memory_cost_kib", "time_cost", "parallelism", "threads")},
    }
    return ScenarioOutcome("login", [check], [raw, measured], details, comparison.legs)
