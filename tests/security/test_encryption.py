"""Encryption at rest: Fernet keys from settings or generated once, rotation by key lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from app.config import Settings
from app.security.encryption import (
    DecryptionFailed,
    Encryptor,
    data_encryption_setting,
    key_encryption_setting,
    load_encryptor,
)
from app.security.keys.errors import KeyConfigurationError


def settings_with(tmp_path: Path, **values: object) -> Settings:
    return Settings(keys_dir=tmp_path / "keys", environment="development", **values)  # type: ignore[arg-type]


def test_ciphertext_hides_the_plaintext_and_round_trips(tmp_path: Path) -> None:
    encryptor = load_encryptor(
        settings_with(tmp_path), data_encryption_setting(settings_with(tmp_path))
    )
    secret = b"https://app.example/reset?token=abc123"
    sealed = encryptor.encrypt(secret)
    assert secret not in sealed
    assert b"abc123" not in sealed
    assert encryptor.decrypt(sealed) == secret


def test_altered_ciphertext_is_refused(tmp_path: Path) -> None:
    encryptor = Encryptor([Fernet.generate_key()])
    sealed = bytearray(encryptor.encrypt(b"secret"))
    sealed[-5] ^= 1
    with pytest.raises(DecryptionFailed):
        encryptor.decrypt(bytes(sealed))


def test_a_key_list_rotates_first_encrypts_all_decrypt() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_by_old = Encryptor([old]).encrypt(b"kept")
    rotated = Encryptor([new, old])
    assert rotated.decrypt(sealed_by_old) == b"kept"
    resealed = rotated.rotate(sealed_by_old)
    assert Encryptor([new]).decrypt(resealed) == b"kept"
    with pytest.raises(DecryptionFailed):
        Encryptor([old]).decrypt(rotated.encrypt(b"new"))


def test_reencrypt_rewrites_only_what_the_first_key_cannot_read() -> None:
    old, new, unknown = Fernet.generate_key(), Fernet.generate_key(), Fernet.generate_key()
    rotated = Encryptor([new, old])

    resealed = rotated.reencrypt(Encryptor([old]).encrypt(b"kept"))

    assert resealed is not None
    assert Encryptor([new]).decrypt(resealed) == b"kept"
    assert rotated.reencrypt(resealed) is None  # already under the first key: nothing to do
    with pytest.raises(DecryptionFailed):
        rotated.reencrypt(Encryptor([unknown]).encrypt(b"lost"))


def test_configured_keys_are_a_comma_separated_list(tmp_path: Path) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    settings = settings_with(
        tmp_path, data_encryption_key=SecretStr(f"{new.decode()}, {old.decode()}")
    )
    encryptor = load_encryptor(settings, data_encryption_setting(settings))
    assert encryptor.decrypt(Encryptor([old]).encrypt(b"x")) == b"x"
    assert not (tmp_path / "keys").exists()  # nothing generated when configured


def test_a_bad_key_is_named_but_never_echoed(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, key_encryption_key=SecretStr("not-a-fernet-key-hunter2"))
    with pytest.raises(KeyConfigurationError) as refused:
        load_encryptor(settings, key_encryption_setting(settings))
    assert "AUTH_KEY_ENCRYPTION_KEY" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_development_generates_one_key_and_keeps_it(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    first = load_encryptor(settings, data_encryption_setting(settings))
    sealed = first.encrypt(b"kept across restarts")
    key_file = tmp_path / "keys" / "data-encryption.key"
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only
    again = load_encryptor(settings, data_encryption_setting(settings))
    assert again.decrypt(sealed) == b"kept across restarts"
    other = load_encryptor(settings, key_encryption_setting(settings))
    with pytest.raises(DecryptionFailed):  # the two settings are two different keys
        other.decrypt(sealed)


def test_without_a_key_and_without_generation_it_refuses(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, jwt_keys_autogenerate=False)
    with pytest.raises(KeyConfigurationError, match="AUTH_DATA_ENCRYPTION_KEY"):
        load_encryptor(settings, data_encryption_setting(settings))
