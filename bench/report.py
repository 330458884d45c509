"""Scenario outcomes: the ratio checks, the summary table and the JSON record."""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import LoadResult

_COMPARE: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True, slots=True)
class Bound:
    """A ratio bound, e.g. `>= 1.0`."""

    op: str
    bound: float

    def met_by(self, ratio: float) -> bool:
        return _COMPARE[self.op](ratio, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:.2f}"


@dataclass
class Check:
    """One target: a ratio of two values measured in the same run."""

    scenario: str
    title: str
    measured: str  # human-readable raw values behind the ratio
    ratio: float
    target: Bound
    flags: list[str] = field(default_factory=list)  # anything that makes the run suspect
    # The same ratio in answers per second of server CPU: what it would be on a quiet core.
    cpu_ratio: float | None = None

    @property
    def passed(self) -> bool:
        return self.target.met_by(self.ratio)

    @property
    def verdict(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict} (flagged)" if self.flags else verdict


@dataclass
class ScenarioOutcome:
    name: str
    checks: list[Check]
    loads: list[LoadResult]  # merged per side: what the table and details show
    details: dict[str, Any] = field(default_factory=dict)
    legs: list[LoadResult] = field(default_factory=list)  # every leg, in order (JSON only)


def crashed(name: str, error: Exception) -> ScenarioOutcome:
    """The outcome of a scenario that raised: a failed check carrying the error."""
    check = Check(
        scenario=name,
        title="scenario crashed",
        measured=f"{type(error).__name__}: {error}"[:120],
        ratio=math.nan,
        target=Bound(">=", 0.0),
        flags=[f"crashed: {type(error).__name__}: {error}"],
    )
    return ScenarioOutcome(name, [check], [])


def flags_of(loads: Sequence[LoadResult]) -> list[str]:
    """A flag for every load run that saw errors (non-2xx or transport failures)."""
    flags = []
    for load in loads:
        if load.has_errors:
            flags.append(
                f"{load.label}: {load.errors} errors "
                f"(statuses {load.statuses}, exceptions {load.exceptions}) {load.error_samples}"
            )
    return flags


def describe(load: LoadResult) -> str:
    lat = load.latency
    rate = f" at {load.target_rate:.0f}/s" if load.target_rate else ""
    lag = f", max send lag {load.max_send_lag_ms:.1f} ms" if load.max_send_lag_ms else ""
    wrapped = f", request list wrapped {load.requests_wrapped}x" if load.requests_wrapped else ""
    cpu = load.cpu_ms_per_request
    cpu_text = f"  server cpu {cpu:.2f} ms/req" if cpu is not None else ""
    return (
        f"{load.label:<34} {load.mode:>6}{rate} conns={load.connections:<3} "
        f"{load.rps:8.1f} req/s  p50 {lat.p50_ms:7.2f}  p90 {lat.p90_ms:7.2f}  "
        f"p99 {lat.p99_ms:7.2f}  max {lat.max_ms:7.2f} ms  ok={load.completed} "
        f"errors={load.errors}{cpu_text}{lag}{wrapped}"
    )


def render_table(outcomes: Sequence[ScenarioOutcome]) -> str:
    rows = [("scenario", "target", "measured", "ratio", "needs", "result", "per-CPU ratio")]
    for outcome in outcomes:
        for check in outcome.checks:
            rows.append(
                (
                    check.scenario,
                    check.title,
                    check.measured,
                    f"{check.ratio:.3f}",
                    str(check.target),
                    check.verdict,
                    _cpu_cell(check),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _cpu_cell(check: Check) -> str:
    if check.cpu_ratio is None:
        return "-"
    return f"{check.cpu_ratio:.3f} {'pass' if check.target.met_by(check.cpu_ratio) else 'FAIL'}"


def render_details(outcomes: Sequence[ScenarioOutcome]) -> str:
    lines: list[str] = []
    for outcome in outcomes:
        lines.append(f"[{outcome.name}]")
        lines.extend(f"  {describe(load)}" for load in outcome.loads)
        lines.extend(f"  {key}: {value}" for key, value in outcome.details.items())
        for check in outcome.checks:
            lines.extend(f"  FLAG {flag}" for flag in check.flags)
    return "\n".join(lines)


def _load_json(load: LoadResult) -> dict[str, Any]:
    record = dataclasses.asdict(load)
    record.pop("samples")
    return record


def to_json(outcomes: Sequence[ScenarioOutcome], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "scenarios": {
            outcome.name: {
                "checks": [
                    {
                        "title": check.title,
                        "measured": check.measured,
                        "ratio": check.ratio,
                        "target": str(check.target),
                        "passed": check.passed,
                        "verdict": check.verdict,
                        "cpu_ratio": check.cpu_ratio,
                        "flags": check.flags,
                    }
                    for check in outcome.checks
                ],
                "loads": [_load_json(load) for load in outcome.loads],
                "details": outcome.details,
                "legs": [_load_json(leg) for leg in outcome.legs],
            }
            for outcome in outcomes
        },
    }


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
