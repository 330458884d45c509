"""Mixed workload: token checks, refreshes, sign-ins and sign-ups at once, for a bounded time,
against the service on PostgreSQL; then the database is counted against what was answered.

Each of the closed-loop connections is one client: it signs in, then picks its next request
by weight: mostly `GET /users/me` with its access token (resource checks dominate real
traffic), refreshes of its own refresh token (each answer's token is the one it uses next, so
no token is ever reused), a fresh sign-in as another seeded user now and then, and rarely a
registration with a new address. Every answer other than the expected status is an error.

Lost writes: after the run, users = seeded + registrations answered 201; sessions, refresh
tokens and audit events match the sign-ins and refreshes answered 200, and every session
holds exactly one unspent refresh token. The scenario passes only with zero errors and every
count matching. The per-IP limits are raised (not disabled) for the run: one load generator
is one address, and throttling is not what this measures.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.context import BenchContext, login_request
from bench.database import BenchDatabase
from bench.http_client import HttpConnection, Response, form_request, get_request, json_request
from bench.loadgen import (
    REQUEST_TIMEOUT_SECONDS,
    TRANSPORT_ERRORS,
    LoadResult,
    Recorder,
    merge,
)
from bench.report import Bound, Check, ScenarioOutcome

SEEDED_USERS = 5_000
CONNECTIONS = 16
# Share of each operation in the mix, in percent.
WEIGHTS = {"check": 70, "refresh": 15, "login": 10, "register": 5}
EXPECTED_STATUS = {"check": 200, "refresh": 200, "login": 200, "register": 201}
RAISED_LIMITS = {
    "AUTH_RATE_LIMIT_LOGIN_IP": "1000000/minute",
    "AUTH_RATE_LIMIT_REGISTER_IP": "1000000/minute",
}
NEW_PASSWORD = "mixed workload passphrase: stapled battery horse"
ZERO = Bound("<=", 0.0)


@dataclass
class Tally:
    """Every answer of the run, also outside the measurement window: what the database
    must hold afterwards."""

    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


@dataclass
class Client:
    """One simulated client on its own connection, with its current token pair."""

    connection: HttpConnection
    access_token: str = ""
    refresh_token: str = ""


async def run(ctx: BenchContext) -> ScenarioOutcome:
    config = ctx.config
    database = ctx.database("_mixed")
    await ctx.prepare(database, SEEDED_USERS)
    tally = Tally()
    recorders = {name: Recorder() for name in WEIGHTS}
    emails = (f"mixed{n}@bench.example" for n in itertools.count())
    accounts = itertools.cycle(range(1, SEEDED_USERS + 1))
    mix = random.Random(20261123)  # noqa: S311 - the same sequence of operations every run
    choices = mix.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=1_000_000)
    picks = iter(choices)

    async with ctx.service(database, env=RAISED_LIMITS) as service:
        target = service.target
        window_start = perf_counter() + config.warmup
        window_end = window_start + config.duration

        async def request(client: Client, operation: str, raw: bytes) -> Response | None:
            sent = perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                    response = await client.connection.request(raw)
            except TRANSPORT_ERRORS as exc:
                tally.failed[operation] += 1
                if window_start <= perf_counter() < window_end:
                    recorders[operation].failure(exc)
                return None
            done = perf_counter()
            expected = response.status == EXPECTED_STATUS[operation]
            (tally.ok if expected else tally.failed)[operation] += 1
            if window_start <= done < window_end:
                # Recorder counts 2xx as success; a 2xx that is not the expected one is not.
                recorders[operation].response(
                    done - sent, response if expected else _as_error(response)
                )
            return response if expected else None

        async def sign_in(client: Client) -> None:
            response = await request(client, "login", login_request(target, next(accounts)))
            if response is not None:
                tokens = response.json()
                client.access_token, client.refresh_token = (
                    tokens["access_token"],
                    tokens["refresh_token"],
                )

        async def one_client() -> None:
            client = Client(HttpConnection(target))
            try:
                await sign_in(client)
                while perf_counter() < window_end:
                    operation = next(picks)
                    if operation == "check":
                        raw = get_request("/users/me", target, bearer=client.access_token)
                        await request(client, operation, raw)
                    elif operation == "refresh":
                        raw = form_request(
                            "/auth/token",
                            target,
                            {"grant_type": "refresh_token", "refresh_token": client.refresh_token},
                        )
                        response = await request(client, operation, raw)
                        if response is not None:
                            tokens = response.json()
                            client.access_token = tokens["access_token"]
                            client.refresh_token = tokens["refresh_token"]
                    elif operation == "login":
                        await sign_in(client)
                    else:
                        body = {"email": next(emails), "password": NEW_PASSWORD}
                        await request(
                            client, operation, json_request("/auth/register", target, body)
                        )
            finally:
                await client.connection.close()

        started = perf_counter()
        await asyncio.gather(*(one_client() for _ in range(CONNECTIONS)))
        elapsed = perf_counter() - started

    loads = [
        recorders[name].result(f"mixed {name}", "closed", config.duration, CONNECTIONS)
        for name in WEIGHTS
    ]
    total = _overall(loads, config.duration)
    counts = await _database_counts(database)
    expected = _expected_counts(tally)
    mismatches = {
        name: {"database": counts[name], "answered": expected[name]}
        for name in expected
        if counts[name] != expected[name]
    }
    errors = sum(tally.failed.values())
    checks = [
        Check(
            scenario="mixed",
            title="errors in a mixed workload (checks, refreshes, sign-ins, sign-ups)",
            measured=(
                f"{total.rps:.0f} req/s overall, p50 {total.latency.p50_ms:.1f} ms, "
                f"p99 {total.latency.p99_ms:.1f} ms; {errors} errors"
            ),
            ratio=float(errors),
            target=ZERO,
            flags=[sample for load in loads for sample in load.error_samples][:3],
        ),
        Check(
            scenario="mixed",
            title="lost writes: database counts that differ from the answers",
            measured=(
                f"{len(expected) - len(mismatches)} of {len(expected)} counts match "
                f"(users {counts['users']}, sessions {counts['sessions']}, "
                f"refresh tokens {counts['refresh tokens']})"
            ),
            ratio=float(len(mismatches)),
            target=ZERO,
            flags=[f"{name}: {values}" for name, values in mismatches.items()],
        ),
    ]
    details: dict[str, Any] = {
        "connections": CONNECTIONS,
        "weights (%)": WEIGHTS,
        "answered over the whole run": dict(tally.ok),
        "failed over the whole run": dict(tally.failed),
        "run seconds (warm-up, window, stragglers)": round(elapsed, 1),
        "database counts": counts,
    }
    return ScenarioOutcome("mixed", checks, [*loads, total], details)


def _as_error(response: Response) -> Response:
    """`response` as the recorder should count it: an unexpected status is an error even when
    it is a 2xx."""
    return Response(599 if response.ok else response.status, response.headers, response.body)


def _overall(loads: list[LoadResult], duration: float) -> LoadResult:
    total = merge("mixed overall", loads)
    # merge() adds the windows up; these ran side by side in one window.
    total.window_seconds = duration
    total.rps = total.completed / duration
    return total


def _expected_counts(tally: Tally) -> dict[str, int]:
    logins, refreshes = tally.ok["login"], tally.ok["refresh"]
    return {
        "users": SEEDED_USERS + tally.ok["register"],
        "sessions": logins,
        "refresh tokens": logins + refreshes,
        "spent refresh tokens": refreshes,
        "sessions without exactly one live refresh token": 0,
        "login audit events": logins,
        "registration audit events": tally.ok["register"],
    }


async def _database_counts(database: BenchDatabase) -> dict[str, int]:
    connection = await asyncpg.connect(database.dsn)
    try:
        queries = {
            "users": "SELECT count(*) FROM users",
            "sessions": "SELECT count(*) FROM sessions",
            "refresh tokens": "SELECT count(*) FROM refresh_tokens",
            "spent refresh tokens": (
                "SELECT count(*) FROM refresh_tokens WHERE spent_at IS NOT NULL"
            ),
            "sessions without exactly one live refresh token": (
                "SELECT count(*) FROM sessions s WHERE (SELECT count(*) FROM refresh_tokens r "
                "WHERE r.session_id = s.id AND r.spent_at IS NULL) <> 1"
            ),
            "login audit events": (
                "SELECT count(*) FROM audit_events WHERE type = 'login.succeeded'"
            ),
            "registration audit events": (
                "SELECT count(*) FROM audit_events WHERE type = 'user.registered'"
            ),
        }
        return {name: int(await connection.fetchval(sql)) for name, sql in queries.items()}
    finally:
        await connection.close()
