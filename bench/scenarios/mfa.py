"""Two-step sign-in: what the second factor costs a sign-in, and that it hashes nothing.

One service on a database of its own (`authsvc_bench_mfa`): users without two-step sign-in,
and users with a confirmed authenticator (one TOTP secret shared by all, encrypted under the
run's AUTH_DATA_ENCRYPTION_KEY, as every seeded user shares one password hash). Every sign-in
is a different user: a TOTP code is accepted once per user and time step, so none is reused.
Two comparisons, A-B-A like the others, closed loops of `--login-connections`:

* **with MFA vs without**: the reference is the password grant of a user without MFA (200);
  the measured side signs users with an authenticator in as a client does: the password
  grant (403 `mfa_required` with an `mfa_token`), then the MFA grant with the authenticator's
  current code (200). A sign-in counts once, when its last answer arrives. Both sides hash
  the password once; the ratio is what the second step adds around that hash.
* **MFA grant alone vs the password grant**: the second step on challenges seeded as a right
  password leaves them (`mfa_token` stored as its digest, open for an hour), vs the password
  grant. A hash in the second step would hold it to the password grant's rate or below; the
  server CPU per request shows the same from the other side.

The issue asks for the rate with MFA vs without and for "no hash" in the MFA step; it sets no
ratio: the bounds below are ours, to notice regressions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from time import perf_counter
from typing import Any

import jwt
import pyotp
from cryptography.fernet import Fernet

from bench.context import BenchContext, login_request
from bench.database import BenchDatabase, mfa_token_of
from bench.http_client import HttpConnection, Target, fetch, form_request
from bench.interleave import Comparison, Leg, compare, rps
from bench.loadgen import (
    REQUEST_TIMEOUT_SECONDS,
    TRANSPORT_ERRORS,
    CpuProbe,
    LoadResult,
    Recorder,
    Rotate,
    closed_loop,
    cpu_in_window,
)
from bench.report import Bound, Check, ScenarioOutcome, flags_of
from bench.servers import RunningServer

MFA_GRANT = "urn:authsvc:params:oauth:grant-type:mfa"
FIRST_PARTY_CLIENT = "authsvc-web"  # AUTH_FIRST_PARTY_CLIENT_ID: a request naming no client
# One authenticator secret for every user with MFA (base32, 160 bits).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

PLAIN_USERS = range(1, 10_001)  # no second factor: the password grant
TWO_STEP_USERS = range(10_001, 20_001)  # an authenticator: both steps
CHALLENGED_USERS = range(20_001, 60_001)  # an authenticator and an open challenge: step two
USERS = CHALLENGED_USERS.stop - 1
CHALLENGE_TTL_SECONDS = 3600

# Both sides hash once; the second step adds a request and the challenge's rows (about a
# refresh's work), which on one busy core costs a quarter of a sign-in. Ours: the issue sets
# no ratio.
WITH_MFA_TARGET = Bound(">=", 0.6)
# A hash in the second step would hold it at or below the password grant's rate (<= 1.0).
NO_HASH_TARGET = Bound(">=", 1.5)
PLAIN_LABEL = "password grant (no MFA)"
TWO_STEP_LABEL = "sign-in with MFA (2 requests)"
MFA_GRANT_LABEL = "MFA grant alone (TOTP)"


class Numbers:
    """Seeded user numbers in turn; `wrapped` counts how often the range started over."""

    def __init__(self, numbers: range) -> None:
        self.numbers = numbers
        self.wrapped = 0
        self._iterator: Iterator[int] = iter(numbers)

    def next_number(self) -> int:
        try:
            return next(self._iterator)
        except StopIteration:
            self.wrapped += 1
            self._iterator = iter(self.numbers)
            return next(self._iterator)


def current_code() -> str:
    """What the users' authenticator app shows now."""
    return pyotp.TOTP(TOTP_SECRET).now()


def mfa_grant_request(target: Target, mfa_token: str) -> bytes:
    fields = {"grant_type": MFA_GRANT, "mfa_token": mfa_token, "otp": current_code()}
    return form_request("/auth/token", target, fields)


class MfaGrants:
    """The second step for the seeded challenges in turn, each with the code of the moment
    it is sent (a request source for `closed_loop`)."""

    def __init__(self, target: Target, numbers: Numbers) -> None:
        self.target = target
        self.numbers = numbers

    def next_request(self) -> bytes:
        return mfa_grant_request(self.target, mfa_token_of(self.numbers.next_number()))


async def two_step_loop(
    target: Target,
    first_steps: Rotate,
    *,
    label: str,
    connections: int,
    duration: float,
    warmup: float,
    cpu_probe: CpuProbe | None = None,
) -> LoadResult:
    """Like `closed_loop`, but each turn of a connection is a whole two-step sign-in: the
    password grant (expected: 403 `mfa_required`), then the MFA grant with its `mfa_token`
    (expected: 200). Counted and timed per sign-in, when its last answer arrives."""
    recorder = Recorder()
    window_start = perf_counter() + warmup
    window_end = window_start + duration
    cpu = asyncio.create_task(cpu_in_window(cpu_probe, window_start, window_end))
    reconnects = 0

    async def worker() -> None:
        nonlocal reconnects
        connection = HttpConnection(target)
        try:
            while perf_counter() < window_end:
                started = perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                        challenge = await connection.request(first_steps.next_request())
                        answer = challenge
                        if challenge.status == 403:
                            mfa_token = challenge.json()["mfa_token"]
                            answer = await connection.request(mfa_grant_request(target, mfa_token))
                except TRANSPORT_ERRORS as exc:
                    if window_start <= perf_counter() < window_end:
                        recorder.failure(exc)
                    await asyncio.sleep(0.01)
                    continue
                done = perf_counter()
                if window_start <= done < window_end:
                    expected = 200 if answer is not challenge else 403
                    recorder.response(done - started, answer, expected_status=expected)
        finally:
            reconnects += connection.reconnects
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    result = recorder.result(label, "closed", duration, connections)
    result.server_cpu_seconds = await cpu
    result.reconnects = reconnects
    result.requests_wrapped = first_steps.wrapped
    return result


async def prepare(ctx: BenchContext, key: bytes) -> BenchDatabase:
    database = ctx.database("_mfa")
    await ctx.prepare(database, USERS)
    secret = Fernet(key).encrypt(TOTP_SECRET.encode()).decode()
    await database.seed_totp_factors(TWO_STEP_USERS.start, CHALLENGED_USERS.stop - 1, secret)
    await database.seed_mfa_challenges(
        CHALLENGED_USERS.start,
        CHALLENGED_USERS.stop - 1,
        FIRST_PARTY_CLIENT,
        CHALLENGE_TTL_SECONDS,
    )
    await database.settle()
    return database


async def check_set_up(service: RunningServer) -> dict[str, Any]:
    """One sign-in of each kind before measuring (users the loads then skip): the claims a
    two-step sign-in and a seeded challenge end with."""
    target = service.target
    plain = await fetch(target, login_request(target, PLAIN_USERS.start))
    challenge = await fetch(target, login_request(target, TWO_STEP_USERS.start))
    if plain.status != 200 or challenge.status != 403:
        raise RuntimeError(
            f"set-up sign-ins: {plain.status} {plain.body!r}, {challenge.status} {challenge.body!r}"
        )
    two_step = await fetch(target, mfa_grant_request(target, challenge.json()["mfa_token"]))
    seeded = await fetch(target, mfa_grant_request(target, mfa_token_of(CHALLENGED_USERS.start)))
    claims = {}
    for name, answer in (("two-step", two_step), ("seeded challenge", seeded)):
        if answer.status != 200:
            raise RuntimeError(f"set-up {name} MFA grant: {answer.status} {answer.body!r}")
        token = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
        if token.get("acr") != "aal2":
            raise RuntimeError(f"set-up {name} sign-in is not aal2: {token}")
        claims[name] = {"acr": token["acr"], "amr": token["amr"]}
    return claims


async def run(ctx: BenchContext) -> ScenarioOutcome:
    config = ctx.config
    key = Fernet.generate_key()
    database = await prepare(ctx, key)
    env = {"AUTH_DATA_ENCRYPTION_KEY": key.decode()}
    async with ctx.service(database, env=env, name="service-mfa") as service:
        target = service.target
        claims = await check_set_up(service)
        plain = Rotate([login_request(target, n) for n in PLAIN_USERS[1:]])
        first_steps = Rotate([login_request(target, n) for n in TWO_STEP_USERS[1:]])
        challenged = Numbers(CHALLENGED_USERS[1:])

        async def plain_leg(seconds: float, warmup: float) -> LoadResult:
            return await closed_loop(
                target,
                plain,
                label=PLAIN_LABEL,
                connections=config.login_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=service.cpu_seconds,
            )

        async def two_step_leg(seconds: float, warmup: float) -> LoadResult:
            return await two_step_loop(
                target,
                first_steps,
                label=TWO_STEP_LABEL,
                connections=config.login_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=service.cpu_seconds,
            )

        async def mfa_grant_leg(seconds: float, warmup: float) -> LoadResult:
            return await closed_loop(
                target,
                MfaGrants(target, challenged),
                label=MFA_GRANT_LABEL,
                connections=config.login_connections,
                duration=seconds,
                warmup=warmup,
                cpu_probe=service.cpu_seconds,
            )

        with_mfa = await _compare(ctx, plain_leg, two_step_leg, TWO_STEP_LABEL)
        no_hash = await _compare(ctx, plain_leg, mfa_grant_leg, MFA_GRANT_LABEL)

    checks = [
        _check(
            with_mfa,
            "sign-ins/s with MFA (password grant + MFA grant) vs without (password grant)",
            "sign-ins/s",
            WITH_MFA_TARGET,
        ),
        _check(
            no_hash,
            "MFA grants/s vs password grants/s: the second step hashes nothing",
            "grants/s",
            NO_HASH_TARGET,
        ),
    ]
    reused = {
        "users without MFA": plain.wrapped,
        "users signing in with MFA": first_steps.wrapped,
        "seeded challenges": challenged.wrapped,
    }
    for what, wrapped in reused.items():
        if wrapped:
            for check in checks:
                check.flags.append(f"{what} were reused ({wrapped}x): seed more")
    details: dict[str, Any] = {
        "round ratios (with MFA / without)": [round(r, 3) for r in with_mfa.round_ratios(rps)],
        "round ratios (MFA grant / password grant)": [
            round(r, 3) for r in no_hash.round_ratios(rps)
        ],
        "server cpu ms per request": {
            load.label: _cpu_ms(load)
            for load in (with_mfa.reference, with_mfa.measured, no_hash.measured)
        },
        "set-up sign-ins": claims,
    }
    loads = [with_mfa.reference, with_mfa.measured, no_hash.reference, no_hash.measured]
    return ScenarioOutcome("mfa", checks, loads, details, [*with_mfa.legs, *no_hash.legs])


async def _compare(
    ctx: BenchContext, reference: Leg, measured: Leg, measured_label: str
) -> Comparison:
    config = ctx.config
    return await compare(
        reference,
        measured,
        reference_label=PLAIN_LABEL,
        measured_label=measured_label,
        rounds=config.rounds,
        duration=config.duration,
        warmup=config.warmup,
        settle=config.settle,
    )


def _check(comparison: Comparison, title: str, unit: str, target: Bound) -> Check:
    reference, measured = comparison.reference, comparison.measured
    return Check(
        scenario="mfa",
        title=title,
        measured=(
            f"{measured.rps:.1f} vs {reference.rps:.1f} {unit} (p50 {measured.latency.p50_ms:.0f}"
            f" vs {reference.latency.p50_ms:.0f} ms); {comparison.spread(rps)}"
        ),
        ratio=comparison.ratio(rps),
        target=target,
        flags=flags_of([reference, measured]),
        cpu_ratio=comparison.cpu_ratio(),
    )


def _cpu_ms(load: LoadResult) -> float | None:
    cpu = load.cpu_ms_per_request
    return None if cpu is None else round(cpu, 2)
