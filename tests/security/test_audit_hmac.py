"""The audit HMAC key: configured, or kept in AUTH_KEYS_DIR; never guessed in production."""

from __future__ import annotations

import hashlib
import hmac
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.security.audit_hmac import (
    AUDIT_KEY_FILE,
    AuditHmac,
    create_audit_key_file,
    load_audit_key,
)
from app.security.keys.errors import KeyConfigurationError
from tests.hardening.test_production_settings import DATA_KEY
from tests.support.cli import run_cli

PG_URL = "postgresql+asyncpg://authsvc@db.invalid:5432/authsvc"
CONFIGURED = "an operator's audit key, long enough to be 32+"


def make_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


def production(keys_dir: Path, **overrides: Any) -> Settings:
    return make_settings(
        environment="production",
        database_url=PG_URL,
        email_backend="smtp",
        keys_dir=keys_dir,
        data_encryption_key=DATA_KEY,
        **overrides,
    )


def test_development_generates_the_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    settings = make_settings(keys_dir=tmp_path / "keys")

    first, second = load_audit_key(settings), load_audit_key(settings)

    assert first == second
    assert len(first) >= 32
    assert stat.S_IMODE((tmp_path / "keys" / AUDIT_KEY_FILE).stat().st_mode) == 0o600


def test_production_without_a_key_refuses_and_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError, match="AUTH_AUDIT_HMAC_KEY") as refused:
        load_audit_key(production(tmp_path / "keys"))

    assert "authsvc keys audit-key" in str(refused.value)
    assert not (tmp_path / "keys" / AUDIT_KEY_FILE).exists()


def test_production_uses_the_key_the_cli_created_and_the_cli_never_replaces_it(
    tmp_path: Path,
) -> None:
    env = {"AUTH_KEYS_DIR": str(tmp_path)}

    created = run_cli("keys", "audit-key", env=env)
    kept = run_cli("keys", "audit-key", env=env)

    assert created.returncode == 0, created.stderr
    assert kept.returncode == 0, kept.stderr
    assert "created" in created.stdout
    assert "kept" in kept.stdout
    stored = (tmp_path / AUDIT_KEY_FILE).read_text().strip().encode()
    assert load_audit_key(production(tmp_path)) == stored


def test_a_configured_key_wins_over_the_file(tmp_path: Path) -> None:
    create_audit_key_file(tmp_path / AUDIT_KEY_FILE)

    key = load_audit_key(production(tmp_path, audit_hmac_key=CONFIGURED))

    assert key == CONFIGURED.encode()


def test_a_short_configured_key_is_refused_without_being_echoed(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError, match="too short") as refused:
        load_audit_key(make_settings(keys_dir=tmp_path, audit_hmac_key="hunter2"))

    assert "hunter2" not in str(refused.value)


def test_replicas_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    settings = make_settings(keys_dir=tmp_path / "shared")
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(load_audit_key(settings))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert [p.name for p in (tmp_path / "shared").iterdir()] == [AUDIT_KEY_FILE]


def test_digests_are_hmac_sha256_under_the_key_and_change_with_it(tmp_path: Path) -> None:
    digest = AuditHmac(make_settings(keys_dir=tmp_path, audit_hmac_key=CONFIGURED)).digest
    rotated = AuditHmac(make_settings(keys_dir=tmp_path, audit_hmac_key=CONFIGURED[::-1])).digest

    expected = hmac.new(CONFIGURED.encode(), b"ada@example.com", hashlib.sha256).hexdigest()
    assert digest("ada@example.com") == expected[:32]
    assert rotated("ada@example.com") != digest("ada@example.com")
