"""`authsvc keys ...`, run as an operator runs it: a subprocess against AUTH_KEYS_DIR or the
database."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.security.keys.directory import KeyDirectory
from tests.support.cli import AUTHSVC
from tests.support.databases import ResetDatabase


def run_keys(keys_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    # Only this test's settings: no AUTH_* from the caller, no .env from the working directory.
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTH_")}
    return subprocess.run(
        [AUTHSVC, "keys", *args],
        env={**env, "AUTH_KEYS_DIR": str(keys_dir), **settings},
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


def test_rotate_stages_a_key_and_list_shows_when_it_signs(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    old = KeyDirectory(keys_dir).generate("EdDSA")

    rotated = run_keys(
        keys_dir, "rotate", "--algorithm", "ES256", AUTH_KEY_PUBLISH_AHEAD_SECONDS="900"
    )
    listed = run_keys(keys_dir, "list")

    assert rotated.returncode == 0, rotated.stderr
    # Staged: published now, signing in 900 s; the old key signs until then.
    new = KeyDirectory(keys_dir).load_schedule(private=False).entries[0].key
    assert "(in 900 s)" in rotated.stdout
    assert KeyDirectory(keys_dir).load().signing_key.kid == old.kid
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:5] == [new.kid, "ES256", "staged", "signs", "from"]
    assert lines[1].split()[:4] == [old.kid, "EdDSA", "active", "signing"]
    assert "until" in lines[1]


def test_rotate_now_signs_at_once_and_retire_drops_the_old_key(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    old = KeyDirectory(keys_dir).generate("EdDSA")

    rotated = run_keys(keys_dir, "rotate", "--now", "--algorithm", "ES256")
    listed = run_keys(keys_dir, "list")
    retired = run_keys(keys_dir, "retire", old.kid)
    refused = run_keys(keys_dir, "retire", KeyDirectory(keys_dir).load().signing_key.kid)

    assert rotated.returncode == 0, rotated.stderr
    new = KeyDirectory(keys_dir).load().signing_key
    assert new.kid in rotated.stdout
    assert f"authsvc keys retire {old.kid}" in rotated.stdout
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == [new.kid, "ES256", "active"]
    assert lines[1].split()[:5] == [old.kid, "EdDSA", "retired", "published", "until"]
    assert retired.returncode == 0, retired.stderr
    assert [key.kid for key in KeyDirectory(keys_dir).load().keys] == [new.kid]
    assert refused.returncode == 1
    assert "rotate --now" in refused.stderr
    assert "Traceback" not in refused.stderr


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


async def test_import_then_the_lifecycle_in_the_database(
    tmp_path: Path, database_url: str, reset_database: ResetDatabase, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip(
            "the key store in a SQLite file: tests/cli/test_database_key_store.py; the lifecycle "
            "commands are the same SQL on both"
        )
    keys_dir = tmp_path / "keys"
    directory = KeyDirectory(keys_dir)
    active = directory.generate("ES256")
    staged = directory.rotate("EdDSA", 960, activate_after_seconds=600).current
    database = {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    in_database = {**database, "AUTH_KEY_STORE": "database"}

    async def keys(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_keys, keys_dir, *args, **settings)

    try:
        imported = await keys("import", **database)
        again = await keys("import", **database)
        listed = await keys("list", **in_database)
        rotated = await keys("rotate", "--now", **in_database)
        retired = await keys("retire", active.kid, **in_database)
    finally:
        await reset_database()

    assert imported.returncode == 0, imported.stderr
    assert f"imported 2 keys from {keys_dir} into the database" in imported.stdout
    assert "set AUTH_KEY_STORE=database" in imported.stderr
    assert again.returncode == 0, again.stderr
    assert "already holds the key ring" in again.stdout
    lines = listed.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        [staged.kid, "EdDSA", "staged"],
        [active.kid, "ES256", "active"],
    ]
    assert rotated.returncode == 0, rotated.stderr
    assert "signs from now" in rotated.stdout
    assert retired.returncode == 0, retired.stderr
    assert "no longer published" in retired.stdout
    # The directory itself was only read.
    assert KeyDirectory(keys_dir).load().signing_key.kid == active.kid
