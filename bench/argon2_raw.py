"""The ceiling for logins: raw argon2id verifications per second, as the service would do them.

Parameters and thread count come from the service's own `PasswordHasher.from_settings`, read
from the same `AUTH_*` environment as the server; the verifications themselves are plain
argon2-cffi `PasswordHasher.verify` calls. Run pinned like the server:

    taskset -c 0 python -m bench.argon2_raw --duration 10 --warmup 2

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import threading
from time import perf_counter, thread_time

import argon2

from app.config import Settings
from app.security.passwords import PasswordHasher

PASSWORD = "raw argon2 benchmark password"


def measure(
    parameters: argon2.PasswordHasher, threads: int, duration: float, warmup: float
) -> dict[str, float | int]:
    """Verify in `threads` threads; count verifications finishing inside the window.

    CPU per verification is each thread's CPU time between its first and its last
    verification inside the window, over the verifications in between.
    """
    hashed = parameters.hash(PASSWORD)
    counts = [0] * threads
    cpu = [(0.0, 0)] * threads  # per thread: CPU seconds, verifications they cover
    window = [0.0, 0.0]

    def open_window() -> None:
        window[0] = perf_counter() + warmup
        window[1] = window[0] + duration

    all_started = threading.Barrier(threads, action=open_window)

    def verify_until_done(slot: int) -> None:
        all_started.wait()
        window_start, window_end = window
        first_cpu = last_cpu = None
        while perf_counter() < window_end:
            parameters.verify(hashed, PASSWORD)
            if window_start <= perf_counter() < window_end:
                counts[slot] += 1
                last_cpu = thread_time()
                first_cpu = last_cpu if first_cpu is None else first_cpu
        if first_cpu is not None and last_cpu is not None:
            cpu[slot] = (last_cpu - first_cpu, counts[slot] - 1)

    workers = [threading.Thread(target=verify_until_done, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    verified = sum(counts)
    cpu_seconds = sum(seconds for seconds, _ in cpu)
    cpu_verifications = sum(covered for _, covered in cpu)
    return {
        "verifications": verified,
        "window_seconds": duration,
        "rate": verified / duration,
        "cpu_ms_per_verify": cpu_seconds * 1000 / cpu_verifications if cpu_verifications else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None, help="default: the service's pool")
    args = parser.parse_args()

    service_hasher = PasswordHasher.from_settings(Settings())
    params = service_hasher.argon2_parameters
    threads = args.threads or service_hasher.workers
    hasher = argon2.PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        salt_len=params.salt_len,
        type=argon2.Type.ID,
    )
    result = measure(hasher, threads, args.duration, args.warmup)
    print(
        json.dumps(
            {
                **result,
                "threads": threads,
                "memory_cost_kib": params.memory_cost_kib,
                "time_cost": params.time_cost,
                "parallelism": params.parallelism,
            }
        )
    )


if __name__ == "__main__":
    main()
