"""The code stays formatted, lint-clean and type-checked: part of the suite, not a side step."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.xdist_group("code_quality")


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ruff_finds_no_lint_errors() -> None:
    result = run_tool("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_ruff_formatted() -> None:
    result = run_tool("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_is_mypy_strict_clean() -> None:
    result = run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_keep_the_layer_contracts() -> None:
    """The house's layering rules, `[tool.importlinter]` in pyproject.toml, all hold."""
    result = run_tool("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


# All the SQLAlchemy a use case needs: the session or connection it is handed and the database
# errors it reacts to. Statements are built in app/repositories/ (import-linter sees only the
# top-level `sqlalchemy`, so this rule is checked here).
SERVICE_SQLALCHEMY_IMPORTS = frozenset({"sqlalchemy.ext.asyncio", "sqlalchemy.exc"})


def test_services_build_no_sql() -> None:
    offenders = []
    for path in sorted((ROOT / "app" / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {module}"
                for module in modules
                if module.split(".")[0] == "sqlalchemy" and module not in SERVICE_SQLALCHEMY_IMPORTS
            ]
    assert not offenders, "\n".join(offenders)
