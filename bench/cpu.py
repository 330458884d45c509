"""CPU time of processes, from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ProcessStat(NamedTuple):
    command: str
    parent: int
    cpu_seconds: float  # user + system, all threads


def parse_stat(text: str) -> ProcessStat:
    """Fields of a /proc/<pid>/stat line (the command may contain spaces and parentheses)."""
    command = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return ProcessStat(
        command, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND
    )


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by process `pid` (0.0 once it is gone)."""
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text()).cpu_seconds
    except OSError:
        return 0.0
