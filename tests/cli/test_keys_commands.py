"""`authsvc keys ...`, run as an operator runs it: a subprocess against AUTH_KEYS_DIR."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from app.security.keys.directory import KeyDirectory
from tests.support.cli import AUTHSVC


def run_keys(keys_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Only this test's settings: no AUTH_* from the caller, no .env from the working directory.
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTH_")}
    return subprocess.run(
        [AUTHSVC, "keys", *args],
        env={**env, "AUTH_KEYS_DIR": str(keys_dir)},
        cwd=keys_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_generate_creates_the_ring_and_prints_its_kid(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"

    result = run_keys(keys_dir, "generate", "--algorithm", "ES256")

    assert result.returncode == 0, result.stderr
    key = KeyDirectory(keys_dir).load().signing_key
    assert key.algorithm == "ES256"
    assert key.kid in result.stdout


def test_generate_refuses_to_replace_an_existing_ring(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    existing = KeyDirectory(keys_dir).generate("EdDSA")

    result = run_keys(keys_dir, "generate")

    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr
    assert KeyDirectory(keys_dir).load().signing_key.kid == existing.kid


def test_rotate_then_list_shows_the_current_and_the_retired_key(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    old = KeyDirectory(keys_dir).generate("EdDSA")

    rotated = run_keys(keys_dir, "rotate", "--algorithm", "ES256")
    listed = run_keys(keys_dir, "list")

    assert rotated.returncode == 0, rotated.stderr
    new = KeyDirectory(keys_dir).load().signing_key
    assert old.kid in rotated.stdout
    assert new.kid in rotated.stdout
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == [new.kid, "ES256", "current"]
    assert lines[1].split()[:4] == [old.kid, "EdDSA", "retired", "until"]


def test_rotate_without_a_ring_points_at_generate(tmp_path: Path) -> None:
    result = run_keys(tmp_path / "keys", "rotate")

    assert result.returncode == 1
    assert "authsvc keys generate" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_algorithm_is_a_usage_error(tmp_path: Path) -> None:
    result = run_keys(tmp_path / "keys", "generate", "--algorithm", "HS256")

    assert result.returncode == 2
    assert "HS256" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "keys").exists()
