"""One endpoint of the service against the bare PK-select baseline, in the same run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.context import BenchContext
from bench.interleave import compare, rps
from bench.loadgen import LoadResult, Rotate, closed_loop
from bench.report import Bound, Check, ScenarioOutcome, flags_of
from bench.servers import RunningServer

BASELINE_LABEL = "baseline GET /users/{id}"
Leg = Callable[[float, float], Awaitable[LoadResult]]


async def race_against_baseline(
    ctx: BenchContext,
    *,
    scenario: str,
    title: str,
    service: RunningServer,
    requests: Rotate,
    label: str,
    baseline: RunningServer,
    bare: Rotate,
    target: Bound,
) -> ScenarioOutcome:
    """Closed loops with the same connections and windows, interleaved baseline-service-
    baseline; the ratio is the service's req/s over the baseline's."""
    config = ctx.config

    def leg(server: RunningServer, source: Rotate, name: str) -> Leg:
        async def run(seconds: float, warmup: float) -> LoadResult:
            return await closed_loop(
                server.target,
                source,
                label=name,
                connections=config.me_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=server.cpu_seconds,
            )

        return run

    comparison = await compare(
        leg(baseline, bare, BASELINE_LABEL),
        leg(service, requests, label),
        reference_label=BASELINE_LABEL,
        measured_label=label,
        rounds=config.rounds,
        duration=config.duration,
        warmup=config.warmup,
        settle=config.settle,
    )
    base, measured = comparison.reference, comparison.measured
    check = Check(
        scenario=scenario,
        title=title,
        measured=(
            f"{measured.rps:.0f} vs {base.rps:.0f} req/s; p50 {measured.latency.p50_ms:.1f} vs "
            f"{base.latency.p50_ms:.1f} ms; p99 {measured.latency.p99_ms:.1f} vs "
            f"{base.latency.p99_ms:.1f} ms; {comparison.spread(rps)}"
        ),
        ratio=comparison.ratio(rps),
        target=target,
        flags=flags_of(comparison.legs),
        cpu_ratio=comparison.cpu_ratio(),
    )
    details = {"round ratios": [round(r, 3) for r in comparison.round_ratios(rps)]}
    return ScenarioOutcome(scenario, [check], [base, measured], details, comparison.legs)
