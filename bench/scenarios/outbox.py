"""The outbox's delivery rate: mail queued in PostgreSQL, delivered by one `authsvc worker` to a
local SMTP sink, next to the same mail sent straight through the service's SMTP sender with
the same concurrency (`bench.smtp_raw`, no database at all). Both run pinned to the server CPU;
the sink runs in the runner, on the load generator's CPU.

Interleaved raw-outbox-raw, `--rounds` times. An outbox leg queues about `--duration` seconds'
worth of mail (at the raw rate) in one COPY while the worker is idle, and its rate is taken
from the sink: messages over the time from the first to the last one received (steady
delivery; the worker's discovery of the batch, up to one poll, is reported apart). The
queue must be empty afterwards, with every message received exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from cryptography.fernet import Fernet

from app.services.common.outbox import encode_mail
from bench.context import BenchContext
from bench.database import BenchDatabase
from bench.http_client import Target, fetch, get_request
from bench.outbox_mail import SmtpSink, bench_mail
from bench.report import Bound, Check, ScenarioOutcome
from bench.servers import PROJECT_ROOT

# The worker's default batch: it delivers this many at once; the raw side sends as many.
CONCURRENCY = 20
# The outbox adds, per batch of 20, a claim and a result transaction, and per message a
# decryption; ours, to notice regressions (the issue asks for the rate, sets no ratio).
TARGET = Bound(">=", 0.5)
MIN_MESSAGES = 500
WORKER_PORT_OFFSET = 6


async def raw_rate(ctx: BenchContext, port: int, messages: int) -> float:
    argv = [
        sys.executable,
        "-m",
        "bench.smtp_raw",
        f"--port={port}",
        f"--messages={messages}",
        f"--concurrency={CONCURRENCY}",
    ]
    process = await asyncio.create_subprocess_exec(
        *ctx.pinning.server_command(argv),
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.smtp_raw failed:\n{err.decode(errors='replace')}")
    rate: float = json.loads(out)["rate"]
    return rate


@asynccontextmanager
async def running_worker(
    ctx: BenchContext, database: BenchDatabase, sink: SmtpSink, key: bytes
) -> AsyncIterator[int]:
    """`authsvc worker` pinned to the server CPU; yields its pid once its metrics answer."""
    port = ctx.port(WORKER_PORT_OFFSET)
    argv = [
        str(PROJECT_ROOT / ".venv" / "bin" / "authsvc"),
        "worker",
        "--metrics-host=127.0.0.1",
        f"--metrics-port={port}",
    ]
    env = {
        **os.environ,
        **ctx.service_env(database),
        "AUTH_DATA_ENCRYPTION_KEY": key.decode(),
        "AUTH_EMAIL_BACKEND": "smtp",
        "AUTH_SMTP_HOST": "127.0.0.1",
        "AUTH_SMTP_PORT": str(sink.port),
        "AUTH_OUTBOX_BATCH_SIZE": str(CONCURRENCY),
        "AUTH_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "AUTH_LOG_LEVEL": "warning",
    }
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    with (ctx.log_dir / "outbox-worker.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *ctx.pinning.server_command(argv),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        target = Target("127.0.0.1", port)
        deadline = time.monotonic() + 60
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"authsvc worker exited with {process.returncode}")
            try:
                if (await fetch(target, get_request("/metrics", target))).status == 200:
                    break
            except (OSError, EOFError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("authsvc worker did not start within 60 s")
            await asyncio.sleep(0.2)
        yield process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def outbox_leg(
    database: BenchDatabase, sink: SmtpSink, key: bytes, messages: int, first: int
) -> dict[str, Any]:
    """Queue `messages` mails in one COPY; wait until the worker has delivered them all."""
    fernet = Fernet(key)
    now = datetime.now(UTC)
    records = [
        (uuid.uuid4(), "mail", fernet.encrypt(encode_mail(bench_mail(n))), now, 0, now)
        for n in range(first, first + messages)
    ]
    sink.reset()
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.copy_records_to_table(
            "outbox_messages",
            records=records,
            columns=["id", "kind", "payload", "available_at", "attempts", "created_at"],
        )
        queued_at = time.perf_counter()
        deadline = queued_at + 300
        while True:
            received, first_at, last_at = sink.snapshot()
            left = await connection.fetchval("SELECT count(*) FROM outbox_messages")
            if left == 0 and received >= messages:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"outbox not drained: {left} left, {received} received")
            await asyncio.sleep(0.02)
        drained_at = time.perf_counter()
        given_up = await connection.fetchval("SELECT count(*) FROM outbox_messages")
    finally:
        await connection.close()
    assert first_at is not None
    assert last_at is not None
    return {
        "messages": messages,
        "received": received,
        "rate": (received - 1) / (last_at - first_at) if last_at > first_at else 0.0,
        "discovery_seconds": first_at - queued_at,
        "end_to_end_seconds": drained_at - queued_at,
        "left": given_up,
    }


async def run(ctx: BenchContext) -> ScenarioOutcome:
    database = ctx.database("_outbox")
    await database.recreate()
    await database.migrate()
    key = Fernet.generate_key()
    sink = SmtpSink().start()
    try:
        raws: list[float] = []
        legs: list[dict[str, Any]] = []
        first_raw = await raw_rate(ctx, sink.port, MIN_MESSAGES)
        raws.append(first_raw)
        messages = max(MIN_MESSAGES, int(first_raw * ctx.config.duration))
        async with running_worker(ctx, database, sink, key):
            for round_number in range(ctx.config.rounds):
                legs.append(
                    await outbox_leg(database, sink, key, messages, round_number * messages)
                )
                sink.reset()
                raws.append(await raw_rate(ctx, sink.port, messages))
    finally:
        sink.stop()
    outbox_rate = sum(leg["received"] for leg in legs) / sum(
        leg["received"] / leg["rate"] for leg in legs
    )
    raw = sum(raws) / len(raws)
    flags = [
        f"round {n}: {leg['received']} received of {leg['messages']}, {leg['left']} left"
        for n, leg in enumerate(legs)
        if leg["received"] != leg["messages"] or leg["left"]
    ]
    check = Check(
        scenario="outbox",
        title="outbox delivery msg/s (1 worker) vs raw SMTP sends/s",
        measured=f"{outbox_rate:.0f} vs {raw:.0f} msg/s, {CONCURRENCY} at a time, one core",
        ratio=outbox_rate / raw,
        target=TARGET,
        flags=flags,
    )
    details = {
        "outbox msg/s per round": [round(leg["rate"]) for leg in legs],
        "raw SMTP msg/s per leg": [round(rate) for rate in raws],
        "messages per round": messages,
        "discovery s (queued -> first received)": [
            round(leg["discovery_seconds"], 2) for leg in legs
        ],
        "end to end s (queued -> queue empty)": [
            round(leg["end_to_end_seconds"], 2) for leg in legs
        ],
    }
    return ScenarioOutcome("outbox", [check], [], details)
