"""The pre-commit hooks run the same checks, with the same locked tools, as the suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def hooks() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def test_ruff_lint_format_and_mypy_run_before_each_commit() -> None:
    assert {"ruff", "ruff-format", "mypy"} <= hooks().keys()


def test_every_hook_uses_the_locked_tools() -> None:
    for hook in hooks().values():
        assert hook["entry"].startswith("uv run --frozen "), hook
        assert hook["language"] == "system", hook


def test_mypy_checks_the_whole_configured_tree_not_single_files() -> None:
    assert hooks()["mypy"]["pass_filenames"] is False
