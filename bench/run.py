"""Run the benchmark scenarios and report each target as a ratio measured within this run.

    .venv/bin/python -m bench.run [--only me|login|flood|scale] [--duration 10] [--json out.json]

Exit status: 0 when every target passed without errors, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.config import Settings
from app.security.passwords import PasswordHasher
from bench.context import BENCH_PASSWORD, BenchConfig, BenchContext
from bench.noise import ForeignLoad
from bench.report import (
    ScenarioOutcome,
    crashed,
    render_details,
    render_table,
    to_json,
    write_json,
)
from bench.scenarios import SCENARIOS
from bench.servers import PROJECT_ROOT, Pinning

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
FOREIGN_LOAD = "CPU used by other programs (cores)"
NOISY_CORES = 0.2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        type=_scenario_names,
        metavar="|".join(SCENARIOS),
        help="run only these scenarios (repeatable or comma-separated); default: all",
    )
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="first leg, s")
    parser.add_argument("--settle", type=float, default=defaults.settle, help="later legs, s")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="A-B-A rounds")
    parser.add_argument("--json", type=Path, help="also write the JSON record here")
    parser.add_argument(
        "--postgres", default=defaults.postgres_url, help="postgresql://user@host:port"
    )
    parser.add_argument("--database", default=defaults.database, help="name prefix of bench DBs")
    parser.add_argument("--port", type=int, default=defaults.base_port, help="first of 4 ports")
    parser.add_argument("--me-connections", type=int, default=defaults.me_connections)
    parser.add_argument("--login-connections", type=int, default=defaults.login_connections)
    parser.add_argument("--flood-rate", type=float, default=defaults.flood_rate, help="req/s")
    parser.add_argument(
        "--flood-login-connections", type=int, default=defaults.flood_login_connections
    )
    parser.add_argument("--scale-rows", type=int, default=defaults.scale_large_rows)
    parser.add_argument("--keep-databases", action="store_true", help="do not drop them at the end")
    return parser.parse_args(argv)


def _scenario_names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCENARIOS)}")
    return names


def config_from(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(
        duration=args.duration,
        warmup=args.warmup,
        settle=args.settle,
        rounds=args.rounds,
        postgres_url=args.postgres.rstrip("/"),
        database=args.database,
        base_port=args.port,
        me_connections=args.me_connections,
        login_connections=args.login_connections,
        flood_rate=args.flood_rate,
        flood_login_connections=args.flood_login_connections,
        scale_large_rows=args.scale_rows,
    )


async def seeded_password_hash() -> str:
    """The argon2id hash every seeded user shares, made by the service's own hasher."""
    hasher = PasswordHasher.from_settings(Settings())
    return await hasher.hash(BENCH_PASSWORD)


async def run_scenarios(
    names: Sequence[str], ctx: BenchContext, keep_databases: bool
) -> list[ScenarioOutcome]:
    outcomes = []
    try:
        for name in names:
            print(f"== {name} ...", flush=True)
            foreign = ForeignLoad()
            try:
                outcome = await SCENARIOS[name](ctx)
            except Exception as exc:  # report it, run the other scenarios
                traceback.print_exc()
                outcome = crashed(name, exc)
            outcome.details[FOREIGN_LOAD] = round(foreign.cores(), 2)
            outcomes.append(outcome)
            print(render_details([outcome]), flush=True)
    finally:
        if not keep_databases:
            for database in ctx.databases:
                try:
                    await database.drop()
                except (OSError, asyncpg.PostgresError) as exc:
                    print(f"warning: could not drop {database.name}: {exc}", file=sys.stderr)
    return outcomes


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = config_from(args)
    wanted = {name for names in args.only or [list(SCENARIOS)] for name in names}
    names = [name for name in SCENARIOS if name in wanted]
    os.chdir(PROJECT_ROOT)  # the service reads `.env` from its working directory, as we do

    pinning = Pinning.detect()
    pinning.pin_current_process_as_client()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS_DIR / f"logs-{stamp}"
    keys_dir = Path(tempfile.mkdtemp(prefix="authsvc-bench-keys-"))
    print(f"pinning: {pinning.describe()}", flush=True)

    started = datetime.now(UTC)
    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            password_hash = runner.run(seeded_password_hash())
            ctx = BenchContext(config, pinning, keys_dir, log_dir, password_hash)
            outcomes = runner.run(run_scenarios(names, ctx, args.keep_databases))
    finally:
        shutil.rmtree(keys_dir, ignore_errors=True)

    meta: dict[str, Any] = {
        "started_at": started.isoformat(),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "pinning": pinning.describe(),
        "config": dataclasses.asdict(config),
        "server_logs": str(log_dir),
    }
    record = to_json(outcomes, meta)
    out = RESULTS_DIR / f"bench-{stamp}.json"
    write_json(out, record)
    if args.json:
        write_json(args.json, record)

    print()
    print(f"pinning: {pinning.describe()}")
    print(render_table(outcomes))
    for outcome in outcomes:
        if outcome.details[FOREIGN_LOAD] >= NOISY_CORES:
            print(
                f"warning: other programs used {outcome.details[FOREIGN_LOAD]:.2f} cores "
                f"during {outcome.name}; its ratios are noisier than usual"
            )
    print(f"\nJSON: {out}" + (f" and {args.json}" if args.json else ""))
    checks = [check for outcome in outcomes for check in outcome.checks]
    return 0 if all(check.passed and not check.flags for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
