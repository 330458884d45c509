"""Drift-resistant comparisons: reference and measured loads interleaved in A-B-A rounds.

Each round runs the reference for half a leg, the measured side for a full leg, and the
reference again for half a leg, so both sides are measured around the same instant. The legs
of each side are merged over all rounds (counts, windows and latency samples); the per-round
ratios show how steady the machine was.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.loadgen import LoadResult, merge

# Runs one leg: (window seconds, warm-up seconds) -> what was measured in the window.
Leg = Callable[[float, float], Awaitable[LoadResult]]
Metric = Callable[[LoadResult], float]


def rps(result: LoadResult) -> float:
    return result.rps


def p99(result: LoadResult) -> float:
    return result.latency.p99_ms


def per_cpu_second(result: LoadResult) -> float:
    """Answers per second of server CPU (0.0 when the server's CPU was not measured)."""
    cpu = result.server_cpu_seconds
    return result.completed / cpu if cpu else 0.0


@dataclass
class Comparison:
    reference: LoadResult  # all reference legs merged
    measured: LoadResult  # all measured legs merged
    rounds: list[tuple[LoadResult, LoadResult]]  # per round: (reference merged, measured)
    legs: list[LoadResult]  # every leg in the order it ran

    def ratio(self, metric: Metric) -> float:
        """measured / reference over the whole run."""
        reference = metric(self.reference)
        return metric(self.measured) / reference if reference else 0.0

    def cpu_ratio(self) -> float | None:
        """measured / reference in answers per server-CPU-second, if both were measured."""
        if self.reference.server_cpu_seconds is None or self.measured.server_cpu_seconds is None:
            return None
        return self.ratio(per_cpu_second)

    def round_ratios(self, metric: Metric) -> list[float]:
        return [
            metric(measured) / metric(reference) if metric(reference) else 0.0
            for reference, measured in self.rounds
        ]

    def spread(self, metric: Metric) -> str:
        """`per-round ratios min-max (median)`, for the table."""
        ratios = self.round_ratios(metric)
        if len(ratios) < 2:
            return ""
        return (
            f"rounds {min(ratios):.2f}-{max(ratios):.2f} (median {statistics.median(ratios):.2f})"
        )


async def compare(
    reference: Leg,
    measured: Leg,
    *,
    reference_label: str,
    measured_label: str,
    rounds: int,
    duration: float,
    warmup: float,
    settle: float,
) -> Comparison:
    """`rounds` A-B-A rounds; each side gets `duration` seconds of window in total.

    The first leg of each side gets the full `warmup`; later legs, on warm servers, `settle`.
    """
    leg_seconds = duration / rounds
    pairs: list[tuple[LoadResult, LoadResult]] = []
    legs: list[LoadResult] = []
    for index in range(rounds):
        first_warmup = warmup if index == 0 else settle
        before = await reference(leg_seconds / 2, first_warmup)
        middle = await measured(leg_seconds, first_warmup)
        after = await reference(leg_seconds / 2, settle)
        pairs.append((merge(reference_label, [before, after]), middle))
        legs.extend([before, middle, after])
    return Comparison(
        reference=merge(reference_label, [reference for reference, _ in pairs]),
        measured=merge(measured_label, [measured for _, measured in pairs]),
        rounds=pairs,
        legs=legs,
    )
