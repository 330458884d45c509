"""The benchmark scenarios, by the name `--only` takes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.context import BenchContext
from bench.report import ScenarioOutcome
from bench.scenarios import flood, introspect, kit, login, me, mfa, mixed, outbox, scale, workers

Scenario = Callable[[BenchContext], Awaitable[ScenarioOutcome]]

SCENARIOS: dict[str, Scenario] = {
    "me": me.run,
    "login": login.run,
    "mfa": mfa.run,
    "flood": flood.run,
    "scale": scale.run,
    "introspect": introspect.run,
    "kit": kit.run,
    "mixed": mixed.run,
    "outbox": outbox.run,
    "workers": workers.run,
}
