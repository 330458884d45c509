"""Mixed workload: token checks, refreshes, sign-ins and sign-ups at once, for a bounded time,
against the service on PostgreSQL; then the database is counted against what was answered.

Each of the closed-loop connections is one client: it signs in, then picks its next request
by weight. The weights follow the shape of real traffic: a frontend calls the API (here
`GET /users/me`, a token check) on every page, refreshes once per access-token lifetime, signs
in once per session and signs up once per account, so checks dominate, refreshes and sign-ins
are moderate and registrations rare. Each client keeps its own refresh chain (the answer's
refresh token is the one it sends next), so no spent token is ever presented. Every answer
other than the expected status, and every transport failure, is an error.

Lost writes: after the run, users = seeded + registrations answered 201; sessions, refresh
tokens and audit events match the sign-ins and refreshes answered 200; every chain's last
token is the only live one of its session, which holds exactly one token per rotation plus
the first; no session was revoked. The scenario passes only with zero errors and every count
matching.

Throttling: registrations are limited per IP on every request (20/hour by default) and the
load generator is one address, so that limit is raised (not disabled). Sign-in limits count
failures only and none are expected; they are raised too, so that one failure shows as itself
instead of a cascade of 429s. Sign-ins take the 5,000 seeded users in turn.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.security.opaque_tokens import token_digest
from bench.context import BenchContext, login_request
from bench.database import BenchDatabase
from bench.http_client import HttpConnection, Response, form_request, get_request, json_request
from bench.loadgen import (
    REQUEST_TIMEOUT_SECONDS,
    TRANSPORT_ERRORS,
    LoadResult,
    Recorder,
    cpu_in_window,
    merge,
)
from bench.report import Bound, Check, ScenarioOutcome
from bench.servers import RunningServer

SEEDED_USERS = 5_000
CONNECTIONS = 16
# Share of each operation in the mix, in percent (see the module docstring for why).
WEIGHTS = {"check": 70, "refresh": 15, "login": 10, "register": 5}
EXPECTED_STATUS = {"check": 200, "refresh": 200, "login": 200, "register": 201}
MIX_SEED = 20261123  # the same sequence of operations every run
RAISED_LIMITS = {
    "AUTH_RATE_LIMIT_LOGIN_IP": "1000000/minute",
    "AUTH_RATE_LIMIT_LOGIN_ACCOUNT": "1000000/minute",
    "AUTH_RATE_LIMIT_REGISTER_IP": "1000000/minute",
}
NEW_PASSWORD = "mixed workload passphrase: stapled battery horse"
ERROR_SAMPLES = 5
ZERO = Bound("<=", 0.0)


@dataclass
class Chain:
    """The refresh tokens of one sign-in as its client saw them."""

    refresh_token: str  # the newest one: the only live token of the session
    rotations: int = 0  # refreshes answered 200


@dataclass
class Tally:
    """Every answer of the run, also outside the measurement window: what the database
    must hold afterwards."""

    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)

    def failure(self, operation: str, sample: str) -> None:
        self.failed[operation] += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{operation}: {sample}"[:240])


@dataclass
class Client:
    """One simulated client on its own connection, with its current tokens."""

    connection: HttpConnection
    access_token: str = ""
    chain: Chain | None = None


@dataclass
class MixedRun:
    """What one mixed run measured and answered; `checks` compares it with the database."""

    loads: list[LoadResult]  # per operation, inside the window
    total: LoadResult  # all operations together
    tally: Tally  # every answer of the run
    elapsed: float  # warm-up, window and stragglers
    counts: dict[str, int] = field(default_factory=dict)  # the database's, set by `checks`

    async def checks(self, scenario: str, database: BenchDatabase) -> list[Check]:
        """Errors, and database counts that differ from the answers (both must be 0)."""
        counts = await _database_counts(database, self.tally.chains)
        expected = _expected_counts(self.tally)
        mismatches = {
            name: {"database": counts[name], "answered": expected[name]}
            for name in expected
            if counts[name] != expected[name]
        }
        errors = sum(self.tally.failed.values())
        total = self.total
        self.counts = counts
        return [
            Check(
                scenario=scenario,
                title="errors in a mixed workload (checks, refreshes, sign-ins, sign-ups)",
                measured=(
                    f"{total.rps:.0f} req/s overall, p50 {total.latency.p50_ms:.1f} ms, "
                    f"p99 {total.latency.p99_ms:.1f} ms; {errors} errors"
                ),
                ratio=float(errors),
                target=ZERO,
                flags=list(self.tally.error_samples),
            ),
            Check(
                scenario=scenario,
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


async def run(ctx: BenchContext) -> ScenarioOutcome:
    database = ctx.database("_mixed")
    await ctx.prepare(database, SEEDED_USERS)
    async with ctx.service(database, env=RAISED_LIMITS) as service:
        mixed = await drive(ctx, service)
    checks = await mixed.checks("mixed", database)
    details: dict[str, Any] = {
        "connections": CONNECTIONS,
        "weights (%)": WEIGHTS,
        "answered over the whole run": dict(mixed.tally.ok),
        "failed over the whole run": dict(mixed.tally.failed),
        "run seconds (warm-up, window, stragglers)": round(mixed.elapsed, 1),
        "database counts": mixed.counts,
    }
    return ScenarioOutcome("mixed", checks, [*mixed.loads, mixed.total], details)


async def drive(ctx: BenchContext, service: RunningServer, label: str = "mixed") -> MixedRun:
    """The mixed workload against `service`, whose database holds the `SEEDED_USERS` users
    and nothing else (registrations may only use new addresses), with its limits raised
    (`RAISED_LIMITS`)."""
    config = ctx.config
    tally = Tally()
    recorders = {name: Recorder() for name in WEIGHTS}
    emails = (f"mixed{n}@bench.example" for n in itertools.count())
    accounts = itertools.cycle(range(1, SEEDED_USERS + 1))
    picks = _operations(MIX_SEED)

    target = service.target
    window_start = perf_counter() + config.warmup
    window_end = window_start + config.duration
    server_cpu = asyncio.create_task(cpu_in_window(service.cpu_seconds, window_start, window_end))

    async def request(client: Client, operation: str, raw: bytes) -> Response | None:
        """Send `raw`, count the answer; the response only when it is the expected one."""
        expected_status = EXPECTED_STATUS[operation]
        sent = perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                response = await client.connection.request(raw)
        except TRANSPORT_ERRORS as exc:
            tally.failure(operation, f"{type(exc).__name__}: {exc}")
            if window_start <= perf_counter() < window_end:
                recorders[operation].failure(exc)
            await asyncio.sleep(0.01)  # a dead server must not become a busy loop
            return None
        done = perf_counter()
        if response.status == expected_status:
            tally.ok[operation] += 1
        else:
            tally.failure(operation, f"{response.status} {response.body[:200]!r}")
        if window_start <= done < window_end:
            recorders[operation].response(done - sent, response, expected_status=expected_status)
        return response if response.status == expected_status else None

    async def sign_in(client: Client) -> None:
        response = await request(client, "login", login_request(target, next(accounts)))
        if response is not None:
            tokens = response.json()
            client.access_token = tokens["access_token"]
            client.chain = Chain(tokens["refresh_token"])
            tally.chains.append(client.chain)

    async def refresh(client: Client) -> None:
        chain = client.chain
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": chain.refresh_token if chain else "",
        }
        response = await request(client, "refresh", form_request("/auth/token", target, fields))
        if response is not None and chain is not None:
            tokens = response.json()
            client.access_token = tokens["access_token"]
            chain.refresh_token = tokens["refresh_token"]
            chain.rotations += 1

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
                    await refresh(client)
                elif operation == "login":
                    await sign_in(client)
                else:
                    body = {"email": next(emails), "password": NEW_PASSWORD}
                    raw = json_request("/auth/register", target, body)
                    await request(client, operation, raw)
        finally:
            await client.connection.close()

    started = perf_counter()
    await asyncio.gather(*(one_client() for _ in range(CONNECTIONS)))
    elapsed = perf_counter() - started
    cpu_seconds = await server_cpu

    loads = [
        recorders[name].result(f"{label} {name}", "closed", config.duration, CONNECTIONS)
        for name in WEIGHTS
    ]
    total = _overall(f"{label} overall", loads, config.duration, cpu_seconds)
    return MixedRun(loads, total, tally, elapsed)


def _operations(seed: int) -> Iterator[str]:
    """An endless, reproducible sequence of operation names drawn by `WEIGHTS`."""
    mix = random.Random(seed)  # noqa: S311 - a workload mix, not a secret
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    while True:
        yield from mix.choices(names, weights=weights, k=1024)


def _overall(
    label: str, loads: list[LoadResult], duration: float, cpu_seconds: float | None
) -> LoadResult:
    total = merge(label, loads)
    # merge() adds the windows up; these ran side by side in one window.
    total.window_seconds = duration
    total.rps = total.completed / duration
    total.server_cpu_seconds = cpu_seconds
    return total


def _expected_counts(tally: Tally) -> dict[str, int]:
    logins, refreshes, registrations = tally.ok["login"], tally.ok["refresh"], tally.ok["register"]
    return {
        "users": SEEDED_USERS + registrations,
        "sessions": logins,
        "revoked sessions": 0,
        "refresh tokens": logins + refreshes,
        "spent refresh tokens": refreshes,
        "sessions without exactly one live refresh token": 0,
        "chains whose last token is not their session's only live one": 0,
        "login audit events": logins,
        "registration audit events": registrations,
        "refresh token reuse audit events": 0,
    }


# A chain matches when its last token is live in a live session that holds exactly one live
# token and one token per rotation plus the first.
_BROKEN_CHAINS = """
SELECT count(*) FROM unnest($1::text[], $2::int[]) AS chain(token_hash, rotations)
WHERE NOT EXISTS (
    SELECT 1 FROM refresh_tokens newest JOIN sessions s ON s.id = newest.session_id
    WHERE newest.token_hash = chain.token_hash
      AND newest.spent_at IS NULL
      AND s.revoked_at IS NULL
      AND (SELECT count(*) FROM refresh_tokens r WHERE r.session_id = s.id)
          = chain.rotations + 1
      AND (SELECT count(*) FROM refresh_tokens r
           WHERE r.session_id = s.id AND r.spent_at IS NULL) = 1
)
"""

_COUNTS = {
    "users": "SELECT count(*) FROM users",
    "sessions": "SELECT count(*) FROM sessions",
    "revoked sessions": "SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL",
    "refresh tokens": "SELECT count(*) FROM refresh_tokens",
    "spent refresh tokens": "SELECT count(*) FROM refresh_tokens WHERE spent_at IS NOT NULL",
    "sessions without exactly one live refresh token": (
        "SELECT count(*) FROM sessions s WHERE (SELECT count(*) FROM refresh_tokens r "
        "WHERE r.session_id = s.id AND r.spent_at IS NULL) <> 1"
    ),
    "login audit events": "SELECT count(*) FROM audit_events WHERE type = 'login.succeeded'",
    "registration audit events": (
        "SELECT count(*) FROM audit_events WHERE type = 'user.registered'"
    ),
    "refresh token reuse audit events": (
        "SELECT count(*) FROM audit_events WHERE type = 'refresh_token.reused'"
    ),
}


async def _database_counts(database: BenchDatabase, chains: list[Chain]) -> dict[str, int]:
    connection = await asyncpg.connect(database.dsn)
    try:
        counts = {name: int(await connection.fetchval(sql)) for name, sql in _COUNTS.items()}
        counts["chains whose last token is not their session's only live one"] = int(
            await connection.fetchval(
                _BROKEN_CHAINS,
                [token_digest(chain.refresh_token) for chain in chains],
                [chain.rotations for chain in chains],
            )
        )
    finally:
        await connection.close()
    return counts
