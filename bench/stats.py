"""Latency summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> LatencySummary:
        ordered = sorted(samples)
        scale = 1000.0
        return cls(
            count=len(ordered),
            mean_ms=(sum(ordered) / len(ordered) * scale) if ordered else 0.0,
            p50_ms=percentile(ordered, 0.50) * scale,
            p90_ms=percentile(ordered, 0.90) * scale,
            p99_ms=percentile(ordered, 0.99) * scale,
            max_ms=(ordered[-1] * scale) if ordered else 0.0,
        )
