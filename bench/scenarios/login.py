"""Target 2: password-grant throughput >= 0.95x the raw argon2id verify rate.

Raw rate: argon2-cffi verifications with the service's parameters in as many threads as the
service's hash pool, in a process pinned like the server, interleaved raw-login-raw. Every
sign-in is a different seeded user with the correct password: nothing is throttled or cached.

Two layouts, each compared with raw argon2 on the same CPUs and thread count:
* one core: the server (event loop and hash threads) on the server CPU. Every millisecond of
  non-hash work per sign-in (HTTP, SQL, signing) is taken from hashing, so the ratio is
  hash time / (hash time + everything else).
* hash core: one hash worker, the server on both CPUs (the load generator shares the second
  with the event loop). The hash thread has a core to itself, as in a deployment sized with
  `AUTH_PASSWORD_HASH_WORKERS` = cores - 1; the ratio says whether the service keeps it busy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.context import LOGIN_USERS, BenchContext, login_request
from bench.database import BenchDatabase
from bench.http_client import Target
from bench.interleave import Comparison, compare, rps
from bench.loadgen import LoadResult, Rotate, closed_loop
from bench.report import Bound, Check, ScenarioOutcome, flags_of
from bench.stats import LatencySummary

TARGET = Bound(">=", 0.95)
RAW_LABEL = "raw argon2id verify (argon2-cffi)"
SERVICE_LABEL = "service POST /auth/token password"
ONE_HASH_WORKER = {"AUTH_PASSWORD_HASH_WORKERS": "1"}


async def run(ctx: BenchContext) -> ScenarioOutcome:
    database = await ctx.main_database()
    # One rotation for both layouts (same port): every sign-in of the run is a different user.
    logins = Rotate([login_request(logins_target(ctx), number) for number in LOGIN_USERS])
    one_core, one_core_check, raw_first = await _layout(
        ctx, database, logins, "one core", env={}, cpus=None
    )
    loads, legs, checks = [*_sides(one_core)], [*one_core.legs], [one_core_check]
    details: dict[str, Any] = {
        "round ratios (one core)": [round(r, 3) for r in one_core.round_ratios(rps)],
        "argon2 (one core)": _parameters(raw_first),
    }
    all_cpus = ctx.pinning.all_cpus
    if all_cpus is not None:
        hash_core, hash_core_check, raw_first = await _layout(
            ctx, database, logins, "hash core", env=ONE_HASH_WORKER, cpus=all_cpus
        )
        loads += _sides(hash_core)
        legs += hash_core.legs
        checks.append(hash_core_check)
        details["round ratios (hash core)"] = [round(r, 3) for r in hash_core.round_ratios(rps)]
        details["argon2 (hash core)"] = _parameters(raw_first)
    if logins.wrapped:
        for check in checks:
            check.flags.append("login users were reused (raise LOGIN_USERS)")
    return ScenarioOutcome("login", checks, loads, details, legs)


async def _layout(
    ctx: BenchContext,
    database: BenchDatabase,
    logins: Rotate,
    layout: str,
    *,
    env: Mapping[str, str],
    cpus: tuple[int, ...] | None,
) -> tuple[Comparison, Check, dict[str, Any]]:
    config = ctx.config
    raw_runs: list[dict[str, Any]] = []
    raw_label, service_label = f"{RAW_LABEL} [{layout}]", f"{SERVICE_LABEL} [{layout}]"

    async def raw_leg(seconds: float, warmup: float) -> LoadResult:
        raw = await ctx.raw_argon2(seconds, warmup, env=env, cpus=cpus)
        raw_runs.append(raw)
        return LoadResult(
            label=raw_label,
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

    async with ctx.service(database, env=env, cpus=cpus, name=f"service-{layout}") as service:
        assert service.target == logins_target(ctx), "the login requests name another port"

        async def login_leg(seconds: float, warmup: float) -> LoadResult:
            return await closed_loop(
                service.target,
                logins,
                label=service_label,
                connections=config.login_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=service.cpu_seconds,
            )

        comparison = await compare(
            raw_leg,
            login_leg,
            reference_label=raw_label,
            measured_label=service_label,
            rounds=config.rounds,
            duration=config.duration,
            warmup=config.warmup,
            settle=config.settle,
        )

    raw, measured = comparison.reference, comparison.measured
    check = Check(
        scenario="login",
        title=f"password grants/s vs raw argon2id verify/s ({layout})",
        measured=(
            f"{measured.rps:.1f} logins/s (p50 {measured.latency.p50_ms:.0f} ms, "
            f"p99 {measured.latency.p99_ms:.0f} ms) vs {raw.rps:.1f} verify/s "
            f"({raw.connections} threads); {comparison.spread(rps)}"
        ),
        ratio=comparison.ratio(rps),
        target=TARGET,
        flags=flags_of([measured]),
        cpu_ratio=comparison.cpu_ratio(),
    )
    return comparison, check, raw_runs[0]


def logins_target(ctx: BenchContext) -> Target:
    return Target("127.0.0.1", ctx.port(0))


def _sides(comparison: Comparison) -> list[LoadResult]:
    return [comparison.reference, comparison.measured]


def _parameters(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: raw[key] for key in ("memory_cost_kib", "time_cost", "parallelism", "threads")}
