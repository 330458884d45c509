"""Signing keys: thumbprints, the JWKS, the key directory, configured keys and reloading."""

from __future__ import annotations

import json
import logging
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from app.config import Settings
from app.security.keys.directory import KeyDirectory
from app.security.keys.errors import KeyConfigurationError, KeyRingExistsError, KeyRingNotFoundError
from app.security.keys.loading import load_key_ring
from app.security.keys.provider import KeyRingProvider
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import (
    SUPPORTED_ALGORITHMS,
    Algorithm,
    PrivateKey,
    SigningKey,
    jwk_thumbprint,
)
from tests.hardening.test_production_settings import DATA_KEY

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PG_URL = "postgresql+asyncpg://authsvc@db.invalid:5432/authsvc"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys(rsa_key: rsa.RSAPrivateKey) -> dict[Algorithm, SigningKey]:
    """One key per algorithm, generated once: RSA generation is slow."""
    return {
        "RS256": SigningKey.from_private_key(rsa_key),
        "ES256": SigningKey.generate("ES256"),
        "EdDSA": SigningKey.generate("EdDSA"),
    }


def make_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


def private_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: SigningKey) -> str:
    return key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class FakeMonotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


# --- thumbprints and the JWKS -------------------------------------------------------------


def test_kid_is_the_rfc7638_thumbprint_of_the_rfc_example_key() -> None:
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    public_key = jwt.PyJWK({"kty": "RSA", "n": n, "e": "AQAB"}).key

    assert jwk_thumbprint(public_key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", SUPPORTED_ALGORITHMS)
def test_jwk_loads_back_as_the_same_public_key(
    keys: dict[Algorithm, SigningKey], algorithm: Algorithm
) -> None:
    key = keys[algorithm]
    jwk = key.public_jwk()

    loaded = jwt.PyJWK(jwk)

    assert loaded.key_id == key.kid
    assert loaded.algorithm_name == algorithm
    assert jwk["use"] == "sig"
    assert public_pem(SigningKey.from_public_key(loaded.key)) == public_pem(key)


def test_jwks_publishes_no_private_member(keys: dict[Algorithm, SigningKey]) -> None:
    ring = KeyRing(keys["RS256"], [keys["ES256"], keys["EdDSA"]])

    published = ring.jwks()["keys"]

    assert [jwk["kid"] for jwk in published] == [key.kid for key in keys.values()]
    for jwk in published:
        assert not PRIVATE_MEMBERS & jwk.keys()
        assert {"kty", "kid", "alg", "use"} <= jwk.keys()


def test_jwks_is_a_copy_callers_cannot_corrupt(keys: dict[Algorithm, SigningKey]) -> None:
    ring = KeyRing(keys["ES256"])

    ring.jwks()["keys"][0]["d"] = "leaked"

    assert "d" not in ring.jwks()["keys"][0]


# --- which keys fit which algorithm -------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_generated_key_fits_its_algorithm(algorithm: Algorithm) -> None:
    key = SigningKey.generate(algorithm)

    assert key.algorithm == algorithm
    assert key.kid == jwk_thumbprint(key.public_key)
    assert key.private_key is not None


def test_generated_rsa_key_has_2048_bits(keys: dict[Algorithm, SigningKey]) -> None:
    public_key = keys["RS256"].public_key

    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size >= 2048


@pytest.mark.parametrize(
    ("make_key", "algorithm"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "RS256"),
        (ed25519.Ed25519PrivateKey.generate, "ES256"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "EdDSA"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES256"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "RS256"),  # noqa: S505
    ],
    ids=["ec-for-rs256", "ed25519-for-es256", "ec-for-eddsa", "p384-for-es256", "rsa1024"],
)
def test_key_unfit_for_the_algorithm_is_refused(make_key: Any, algorithm: Algorithm) -> None:
    with pytest.raises(KeyConfigurationError):
        SigningKey.from_private_key(make_key(), algorithm=algorithm)


def test_ring_refuses_a_signing_key_without_private_half(
    keys: dict[Algorithm, SigningKey],
) -> None:
    with pytest.raises(KeyConfigurationError, match="no private key"):
        KeyRing(keys["ES256"].retired(NOW))


# --- the key directory --------------------------------------------------------------------


def test_generated_ring_survives_a_restart(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "ring")
    key = directory.generate("ES256")

    first = directory.load()
    second = KeyDirectory(tmp_path / "ring").load()

    assert first.signing_key.kid == second.signing_key.kid == key.kid
    assert second.signing_key.private_key is not None


def test_key_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "ring")
    directory.generate("EdDSA")
    directory.rotate("EdDSA", retire_for_seconds=960)

    assert mode_of(directory.path) == 0o700
    files = [path for path in directory.path.iterdir() if path.name != ".lock"]
    assert len(files) == 3  # manifest, current key, retired key
    for path in files:
        assert mode_of(path) == 0o600, path


def test_generate_refuses_to_replace_an_existing_ring(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    key = directory.generate("ES256")

    with pytest.raises(KeyRingExistsError):
        directory.generate("ES256")

    assert directory.load().signing_key.kid == key.kid


def test_forced_generate_replaces_the_ring_and_deletes_old_keys(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    old = directory.generate("ES256")
    directory.rotate("ES256", retire_for_seconds=960)

    new = directory.generate("EdDSA", force=True)

    ring = directory.load()
    assert [key.kid for key in ring.keys] == [new.kid]
    assert sorted(path.name for path in tmp_path.glob("*.pem")) == [f"{new.kid}.pem"]
    assert old.kid != new.kid


def test_concurrent_generates_create_exactly_one_ring(tmp_path: Path) -> None:
    directory = tmp_path / "ring"
    outcomes: list[str] = []

    def generate() -> None:
        try:
            KeyDirectory(directory).generate("EdDSA")
            outcomes.append("created")
        except KeyRingExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=generate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created", "exists", "exists", "exists"]
    assert len(list(directory.glob("*.pem"))) == 1


def test_rotation_keeps_the_old_key_published_until_its_tokens_expired(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    old = directory.generate("ES256")

    rotation = directory.rotate("EdDSA", retire_for_seconds=960, now=NOW)

    assert rotation.retired.kid == old.kid
    assert rotation.retired.publish_until == NOW + timedelta(seconds=960)
    during = directory.load(NOW + timedelta(seconds=959))
    assert during.signing_key.kid == rotation.current.kid
    assert during.signing_key.algorithm == "EdDSA"
    assert {jwk["kid"] for jwk in during.jwks()["keys"]} == {old.kid, rotation.current.kid}
    assert during.algorithms == ["EdDSA", "ES256"]
    after = directory.load(NOW + timedelta(seconds=960))
    assert after.verification_key(old.kid) is None
    assert [jwk["kid"] for jwk in after.jwks()["keys"]] == [rotation.current.kid]
    assert not (tmp_path / f"{old.kid}.pem").exists()


def test_retired_key_keeps_only_its_public_half_on_disk(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    old = directory.generate("ES256")

    directory.rotate("ES256", retire_for_seconds=960, now=NOW)

    assert b"PRIVATE" not in (tmp_path / f"{old.kid}.pem").read_bytes()
    retired = directory.load(NOW).verification_key(old.kid)
    assert retired is not None
    assert retired.private_key is None


def test_a_second_rotation_keeps_both_retired_keys(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    first = directory.generate("EdDSA")
    second = directory.rotate("EdDSA", retire_for_seconds=960, now=NOW).current
    third = directory.rotate("EdDSA", retire_for_seconds=960, now=NOW + timedelta(seconds=60))

    ring = directory.load(NOW + timedelta(seconds=120))

    assert [key.kid for key in ring.keys] == [third.current.kid, second.kid, first.kid]


def test_rotate_without_a_ring_says_so(tmp_path: Path) -> None:
    with pytest.raises(KeyRingNotFoundError, match="authsvc keys generate"):
        KeyDirectory(tmp_path / "missing").rotate("ES256", retire_for_seconds=960)


def test_corrupt_manifest_is_a_configuration_error(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    directory.generate("ES256")
    directory.manifest_path.write_text("{not json")

    with pytest.raises(KeyConfigurationError, match="corrupt"):
        directory.load()


def test_manifest_cannot_name_a_file_outside_the_directory(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    directory.generate("ES256")
    manifest = json.loads(directory.manifest_path.read_text())
    manifest["current"]["kid"] = "../../../../etc/passwd"
    directory.manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(KeyConfigurationError, match="bad kid"):
        directory.load()


def test_key_file_holding_another_key_is_refused(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    key = directory.generate("ES256")
    other = SigningKey.generate("ES256")
    assert other.private_key is not None
    (tmp_path / f"{key.kid}.pem").write_text(private_pem(other.private_key))

    with pytest.raises(KeyConfigurationError, match="does not hold the key"):
        directory.load()


def test_naive_now_is_refused(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    directory.generate("ES256")

    with pytest.raises(ValueError, match="timezone-aware"):
        directory.load(datetime(2030, 1, 1))


# --- what the service signs with ----------------------------------------------------------


def test_configured_pem_signs_and_its_kid_is_its_thumbprint(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = make_settings(jwt_private_key=private_pem(rsa_key), keys_dir=tmp_path / "ring")

    ring = load_key_ring(settings)

    assert ring.signing_key.kid == jwk_thumbprint(rsa_key.public_key())
    assert ring.signing_key.algorithm == "RS256"
    assert not (tmp_path / "ring").exists()  # a configured key never touches the directory


def test_configured_pem_file_signs(tmp_path: Path, keys: dict[Algorithm, SigningKey]) -> None:
    key = keys["EdDSA"]
    assert key.private_key is not None
    path = tmp_path / "signing.pem"
    path.write_text(private_pem(key.private_key))

    ring = load_key_ring(make_settings(jwt_private_key_file=path, jwt_algorithm="EdDSA"))

    assert ring.signing_key.kid == key.kid


def test_configured_pem_with_escaped_newlines_is_accepted(
    keys: dict[Algorithm, SigningKey],
) -> None:
    key = keys["ES256"]
    assert key.private_key is not None
    one_line = private_pem(key.private_key).replace("\n", "\\n")

    ring = load_key_ring(make_settings(jwt_private_key=one_line, jwt_algorithm="ES256"))

    assert ring.signing_key.kid == key.kid


def test_configured_key_of_the_wrong_type_is_refused(keys: dict[Algorithm, SigningKey]) -> None:
    key = keys["ES256"]
    assert key.private_key is not None
    settings = make_settings(jwt_private_key=private_pem(key.private_key), jwt_algorithm="RS256")

    with pytest.raises(KeyConfigurationError, match="AUTH_JWT_ALGORITHM=RS256"):
        load_key_ring(settings)


def test_configured_garbage_is_refused_without_echoing_it() -> None:
    secret = "not-a-key-but-maybe-a-secret"

    with pytest.raises(KeyConfigurationError) as refused:
        load_key_ring(make_settings(jwt_private_key=secret))

    assert "AUTH_JWT_PRIVATE_KEY" in str(refused.value)
    assert secret not in str(refused.value)


def test_unreadable_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError, match="cannot read"):
        load_key_ring(make_settings(jwt_private_key_file=tmp_path / "missing.pem"))


def test_key_and_key_file_together_are_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    settings = make_settings(
        jwt_private_key=private_pem(rsa_key), jwt_private_key_file=tmp_path / "k.pem"
    )

    with pytest.raises(KeyConfigurationError, match="not both"):
        load_key_ring(settings)


def test_previous_public_keys_verify_but_never_sign(
    keys: dict[Algorithm, SigningKey], rsa_key: rsa.RSAPrivateKey
) -> None:
    bundle = public_pem(keys["ES256"]) + "\n" + public_pem(keys["EdDSA"])
    settings = make_settings(jwt_private_key=private_pem(rsa_key), jwt_previous_public_keys=bundle)

    ring = load_key_ring(settings)

    assert ring.signing_key.kid == keys["RS256"].kid
    assert [key.kid for key in ring.previous_keys] == [keys["ES256"].kid, keys["EdDSA"].kid]
    assert all(key.private_key is None for key in ring.previous_keys)
    assert len(ring.jwks()["keys"]) == 3


def test_previous_public_keys_are_published_next_to_a_key_ring(
    tmp_path: Path, keys: dict[Algorithm, SigningKey]
) -> None:
    # Moving from AUTH_JWT_PRIVATE_KEY to a key ring: the old key must keep verifying.
    current = KeyDirectory(tmp_path).generate("EdDSA")
    settings = make_settings(keys_dir=tmp_path, jwt_previous_public_keys=public_pem(keys["ES256"]))

    ring = load_key_ring(settings)

    assert [key.kid for key in ring.keys] == [current.kid, keys["ES256"].kid]


def test_previous_public_keys_that_are_not_pem_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    settings = make_settings(
        jwt_private_key=private_pem(rsa_key), jwt_previous_public_keys="garbage"
    )

    with pytest.raises(KeyConfigurationError, match="AUTH_JWT_PREVIOUS_PUBLIC_KEYS"):
        load_key_ring(settings)


def test_production_without_keys_refuses_to_start(tmp_path: Path) -> None:
    settings = make_settings(
        environment="production",
        database_url=PG_URL,
        email_backend="smtp",
        keys_dir=tmp_path / "ring",
        data_encryption_key=DATA_KEY,
    )

    with pytest.raises(KeyConfigurationError, match="authsvc keys generate"):
        load_key_ring(settings)

    assert not (tmp_path / "ring").exists()


def test_production_uses_a_ring_created_by_the_cli(tmp_path: Path) -> None:
    key = KeyDirectory(tmp_path).generate("ES256")
    settings = make_settings(
        environment="production",
        database_url=PG_URL,
        email_backend="smtp",
        keys_dir=tmp_path,
        data_encryption_key=DATA_KEY,
    )

    assert load_key_ring(settings).signing_key.kid == key.kid


def test_development_generates_the_ring_once(tmp_path: Path) -> None:
    settings = make_settings(keys_dir=tmp_path / "ring", jwt_algorithm="EdDSA")

    first = load_key_ring(settings)
    second = load_key_ring(settings)

    assert first.signing_key.algorithm == "EdDSA"
    assert first.signing_key.kid == second.signing_key.kid


def test_ring_on_disk_decides_the_algorithm_and_a_mismatch_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    KeyDirectory(tmp_path).generate("EdDSA")

    with caplog.at_level(logging.WARNING, logger="app.security.keys.loading"):
        ring = load_key_ring(make_settings(keys_dir=tmp_path, jwt_algorithm="ES256"))

    assert ring.signing_key.algorithm == "EdDSA"
    assert "authsvc keys rotate --algorithm ES256" in caplog.text


# --- noticing changes on disk -------------------------------------------------------------


def watching_provider(path: Path, monotonic: FakeMonotonic) -> KeyRingProvider:
    return KeyRingProvider.from_settings(
        make_settings(keys_dir=path, jwt_algorithm="ES256"),
        check_interval_seconds=5,
        monotonic=monotonic,
    )


def test_provider_picks_up_a_rotation_done_by_another_process(tmp_path: Path) -> None:
    monotonic = FakeMonotonic()
    provider = watching_provider(tmp_path, monotonic)
    old_kid = provider.current().signing_key.kid

    rotation = KeyDirectory(tmp_path).rotate("ES256", retire_for_seconds=960)
    monotonic.value += 4.9
    before_check = provider.current()
    monotonic.value += 0.1
    after_check = provider.current()

    assert before_check.signing_key.kid == old_kid
    assert after_check.signing_key.kid == rotation.current.kid
    assert after_check.verification_key(old_kid) is not None


def test_provider_checks_early_for_a_token_with_an_unknown_kid(tmp_path: Path) -> None:
    monotonic = FakeMonotonic()
    provider = watching_provider(tmp_path, monotonic)

    new_kid = KeyDirectory(tmp_path).rotate("ES256", retire_for_seconds=960).current.kid
    too_soon = provider.verification_key(new_kid)
    monotonic.value += 1
    found = provider.verification_key(new_kid)

    assert too_soon is None
    assert found is not None


def test_provider_keeps_the_ring_when_a_reload_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monotonic = FakeMonotonic()
    provider = watching_provider(tmp_path, monotonic)
    kid = provider.current().signing_key.kid

    KeyDirectory(tmp_path).manifest_path.write_text("{broken")
    monotonic.value += 5
    with caplog.at_level(logging.ERROR, logger="app.security.keys.provider"):
        ring = provider.current()

    assert ring.signing_key.kid == kid
    assert "keeping the ones in use" in caplog.text


def test_provider_stops_publishing_a_retired_key_when_its_time_is_up(
    keys: dict[Algorithm, SigningKey],
) -> None:
    retired = keys["EdDSA"].retired(NOW)
    wall_clock = [NOW - timedelta(seconds=1)]
    monotonic = FakeMonotonic()
    provider = KeyRingProvider(
        KeyRing(keys["ES256"], [retired]).published_at,
        clock=lambda: wall_clock[0],
        monotonic=monotonic,
    )
    assert provider.current().verification_key(retired.kid) is not None

    wall_clock[0] = NOW
    monotonic.value += 5

    assert provider.current().verification_key(retired.kid) is None
