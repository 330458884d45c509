"""Load drivers over keep-alive connections.

* `closed_loop`: N connections, each sending its next request as soon as the previous answer
  arrived, for a fixed time. Measures throughput; latency is send-to-answer.
* `open_loop`: requests scheduled at a fixed rate whether or not earlier ones have answered
  (a pool of connections, grown on demand). Latency runs from the *scheduled* send time, so a
  stalled server is charged for the requests that queued behind the stall (no coordinated
  omission).

Both count only what falls in a measurement window after a warm-up, and check every status:
any non-2xx answer or transport failure is an error.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Literal, Protocol

from bench.http_client import HttpConnection, Response, Target
from bench.stats import LatencySummary

REQUEST_TIMEOUT_SECONDS = 30.0
ERROR_SAMPLES = 3
TRANSPORT_ERRORS = (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError, ValueError)

# Returns the CPU seconds the server has used so far; sampled at the window's start and end.
CpuProbe = Callable[[], float]


class RequestSource(Protocol):
    """Hands out the pre-encoded bytes of the next request."""

    def next_request(self) -> bytes: ...


class Rotate:
    """Requests in turn; `wrapped` counts how often the list started over."""

    def __init__(self, requests: Sequence[bytes]) -> None:
        if not requests:
            raise ValueError("no requests to rotate through")
        self.requests = list(requests)
        self.wrapped = 0
        self._next = 0

    def next_request(self) -> bytes:
        if self._next == len(self.requests):
            self._next = 0
            self.wrapped += 1
        raw = self.requests[self._next]
        self._next += 1
        return raw


@dataclass
class LoadResult:
    """What one load run measured inside its window (`completed`, `rps`: 2xx answers)."""

    label: str
    mode: Literal["closed", "open"]
    window_seconds: float
    connections: int
    completed: int
    errors: int
    rps: float
    latency: LatencySummary
    statuses: dict[str, int]
    exceptions: dict[str, int]
    error_samples: list[str]
    reconnects: int = 0
    target_rate: float | None = None
    max_send_lag_ms: float | None = None
    requests_wrapped: int = 0
    server_cpu_seconds: float | None = None  # used by the server inside the window
    samples: list[float] = field(default_factory=list, repr=False)  # latencies, seconds

    @property
    def has_errors(self) -> bool:
        return self.errors > 0 or self.completed == 0

    @property
    def cpu_ms_per_request(self) -> float | None:
        """Server CPU per answered request: throughput with the noise of a shared CPU removed."""
        if self.server_cpu_seconds is None or not self.completed:
            return None
        return self.server_cpu_seconds * 1000.0 / self.completed


def merge(label: str, parts: Sequence[LoadResult]) -> LoadResult:
    """One result over several windows of the same load (e.g. the halves of an A-B-A run)."""
    window = sum(part.window_seconds for part in parts)
    completed = sum(part.completed for part in parts)
    samples = [sample for part in parts for sample in part.samples]
    statuses: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    lags = [part.max_send_lag_ms for part in parts if part.max_send_lag_ms is not None]
    cpu = [part.server_cpu_seconds for part in parts]
    for part in parts:
        statuses.update(part.statuses)
        exceptions.update(part.exceptions)
    return LoadResult(
        label=label,
        mode=parts[0].mode,
        window_seconds=window,
        connections=max(part.connections for part in parts),
        completed=completed,
        errors=sum(part.errors for part in parts),
        rps=completed / window,
        latency=LatencySummary.of_seconds(samples),
        statuses=dict(statuses),
        exceptions=dict(exceptions),
        error_samples=[sample for part in parts for sample in part.error_samples],
        reconnects=sum(part.reconnects for part in parts),
        target_rate=parts[0].target_rate,
        max_send_lag_ms=max(lags) if lags else None,
        requests_wrapped=max(part.requests_wrapped for part in parts),
        server_cpu_seconds=None if None in cpu else sum(c for c in cpu if c is not None),
        samples=samples,
    )


@dataclass
class Recorder:
    """What a load saw: latencies, statuses, errors and the first few error samples."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    ok: int = 0
    errors: int = 0

    def response(
        self, latency: float, response: Response, *, expected_status: int | None = None
    ) -> None:
        """Count an answer: any 2xx is a success, or only `expected_status` when given."""
        self.latencies.append(latency)
        self.statuses[str(response.status)] += 1
        if response.ok if expected_status is None else response.status == expected_status:
            self.ok += 1
        else:
            self.errors += 1
            if len(self.error_samples) < ERROR_SAMPLES:
                self.error_samples.append(f"{response.status} {response.body[:200]!r}")

    def failure(self, exc: BaseException) -> None:
        self.errors += 1
        self.exceptions[type(exc).__name__] += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{type(exc).__name__}: {exc}"[:200])

    def result(
        self, label: str, mode: Literal["closed", "open"], window: float, connections: int
    ) -> LoadResult:
        return LoadResult(
            label=label,
            mode=mode,
            window_seconds=window,
            connections=connections,
            completed=self.ok,
            errors=self.errors,
            rps=self.ok / window,
            latency=LatencySummary.of_seconds(self.latencies),
            statuses=dict(self.statuses),
            exceptions=dict(self.exceptions),
            error_samples=self.error_samples,
            samples=self.latencies,
        )


def _wrapped(source: RequestSource) -> int:
    return source.wrapped if isinstance(source, Rotate) else 0


async def cpu_in_window(probe: CpuProbe | None, start: float, end: float) -> float | None:
    """The probe's increase between `start` and `end` (perf_counter times)."""
    if probe is None:
        return None
    await asyncio.sleep(max(0.0, start - perf_counter()))
    before = probe()
    await asyncio.sleep(max(0.0, end - perf_counter()))
    return probe() - before


async def closed_loop(
    target: Target,
    source: RequestSource,
    *,
    label: str,
    connections: int,
    duration: float,
    warmup: float,
    cpu_probe: CpuProbe | None = None,
) -> LoadResult:
    """`connections` connections in a tight request/response loop for `warmup + duration` s.

    Counted: answers that arrive inside the window (after the warm-up).
    """
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
                raw = source.next_request()
                sent = perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                        response = await connection.request(raw)
                except TRANSPORT_ERRORS as exc:
                    if window_start <= perf_counter() < window_end:
                        recorder.failure(exc)
                    await asyncio.sleep(0.01)
                    continue
                done = perf_counter()
                if window_start <= done < window_end:
                    recorder.response(done - sent, response)
        finally:
            reconnects += connection.reconnects
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    result = recorder.result(label, "closed", duration, connections)
    result.server_cpu_seconds = await cpu
    result.reconnects = reconnects
    result.requests_wrapped = _wrapped(source)
    return result


class _ConnectionPool:
    """Idle keep-alive connections; a new one is opened when none is idle, up to `limit`."""

    def __init__(self, target: Target, limit: int) -> None:
        self.target = target
        self.limit = limit
        self.created: list[HttpConnection] = []
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()

    async def prefill(self, count: int) -> None:
        for _ in range(min(count, self.limit)):
            connection = HttpConnection(self.target)
            await connection.open()
            self.created.append(connection)
            self._idle.put_nowait(connection)

    async def acquire(self) -> HttpConnection:
        if self._idle.empty() and len(self.created) < self.limit:
            connection = HttpConnection(self.target)
            self.created.append(connection)
            return connection
        return await self._idle.get()

    def release(self, connection: HttpConnection) -> None:
        self._idle.put_nowait(connection)

    async def close(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self.created))


async def open_loop(
    target: Target,
    source: RequestSource,
    *,
    label: str,
    rate: float,
    duration: float,
    warmup: float,
    max_connections: int = 256,
    prefill: int = 16,
    cpu_probe: CpuProbe | None = None,
) -> LoadResult:
    """Send at `rate` requests/s for `warmup + duration` s, then wait for the stragglers.

    Counted: requests *scheduled* inside the window; latency is answer time minus scheduled
    send time, so queueing in the client (no idle connection) counts against the server.
    """
    recorder = Recorder()
    pool = _ConnectionPool(target, max_connections)
    await pool.prefill(prefill)
    start = perf_counter() + 0.01
    window_start = start + warmup
    window_end = window_start + duration
    cpu = asyncio.create_task(cpu_in_window(cpu_probe, window_start, window_end))
    max_lag = 0.0
    pending: set[asyncio.Task[None]] = set()

    async def send(scheduled: float, counted: bool) -> None:
        connection = await pool.acquire()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                response = await connection.request(source.next_request())
        except TRANSPORT_ERRORS as exc:
            if counted:
                recorder.failure(exc)
            return
        finally:
            pool.release(connection)
        if counted:
            recorder.response(perf_counter() - scheduled, response)

    for index in itertools.count():
        scheduled = start + index / rate
        if scheduled >= window_end:
            break
        delay = scheduled - perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        counted = scheduled >= window_start
        if counted:
            max_lag = max(max_lag, perf_counter() - scheduled)
        task = asyncio.create_task(send(scheduled, counted))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    await pool.close()

    result = recorder.result(label, "open", duration, len(pool.created))
    result.server_cpu_seconds = await cpu
    result.target_rate = rate
    result.max_send_lag_ms = max_lag * 1000.0
    result.reconnects = sum(connection.reconnects for connection in pool.created)
    result.requests_wrapped = _wrapped(source)
    return result
