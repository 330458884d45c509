"""CPU taken by other programs while a scenario ran: on a shared machine it skews the ratios.

Counts every process except this runner, its descendants (servers, raw argon2) and
PostgreSQL (part of the workload). Processes that start and end between two snapshots are
missed, so this is a lower bound.
"""

from __future__ import annotations

import os
from pathlib import Path
from time import monotonic

from bench.cpu import ProcessStat, parse_stat

_WORKLOAD_COMMANDS = frozenset({"postgres"})


def _processes() -> dict[int, ProcessStat]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            found[int(entry.name)] = parse_stat((entry / "stat").read_text())
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


def _descendants(root: int, processes: dict[int, ProcessStat]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.parent, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class ForeignLoad:
    """Start measuring on construction; `cores()` is the average since then."""

    def __init__(self) -> None:
        self._start = _processes()
        self._started_at = monotonic()

    def cores(self) -> float:
        end = _processes()
        elapsed = monotonic() - self._started_at
        ours = _descendants(os.getpid(), end)
        used = 0.0
        for pid, process in end.items():
            if pid in ours or process.command in _WORKLOAD_COMMANDS:
                continue
            before = self._start.get(pid)
            same = before is not None and before.command == process.command
            used += process.cpu_seconds - (before.cpu_seconds if same and before else 0.0)
        return used / elapsed if elapsed > 0 else 0.0
