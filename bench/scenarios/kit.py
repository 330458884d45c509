"""Target 5: local token verification in the consumer kit >= 0.9x bare PyJWT.

Runs `bench.kit_verify` in a child process pinned like the servers: no server, no database,
one process verifying the same tokens both ways (RS256, ES256, EdDSA).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from bench.context import BenchContext
from bench.report import Bound, Check, ScenarioOutcome
from bench.servers import PROJECT_ROOT

TARGET = Bound(">=", 0.9)


async def run(ctx: BenchContext) -> ScenarioOutcome:
    argv = [sys.executable, "-m", "bench.kit_verify", "--json"]
    process = await asyncio.create_subprocess_exec(
        *ctx.pinning.server_command(argv),
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if not out:
        raise RuntimeError(f"bench.kit_verify failed:\n{err.decode(errors='replace')}")
    results: dict[str, dict[str, Any]] = json.loads(out)["results"]
    checks = [
        Check(
            scenario="kit",
            title=f"kit verify_cached {algorithm} tokens/s vs bare jwt.decode",
            measured=(
                f"{numbers['kit']:.0f} vs {numbers['bare']:.0f} tokens/s on one core "
                f"(await verify: {numbers['kit_async']:.0f})"
            ),
            ratio=numbers["ratio"],
            target=TARGET,
        )
        for algorithm, numbers in results.items()
    ]
    return ScenarioOutcome("kit", checks, [], {"tokens/s": results})
