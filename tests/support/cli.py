"""The `authsvc` command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    return subprocess.run(
        [AUTHSVC, *args],
        env={**clean_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
