"""The key lifecycle, staged -> active -> retired: the schedule itself, the key directory that
keeps it, and the provider that switches keys at their time without being told."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from app.security.keys.directory import KeyDirectory
from app.security.keys.errors import KeyConfigurationError, KeyLifecycleError
from app.security.keys.lifecycle import (
    KeySchedule,
    KeyState,
    retirement_period,
)
from app.security.keys.provider import KeyRingProvider
from app.security.keys.signing_key import SigningKey

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
AHEAD = timedelta(seconds=600)
RETIRE_FOR = retirement_period(900)  # 15 min tokens + 60 s margin
S = timedelta(seconds=1)


@pytest.fixture(scope="module")
def keys() -> list[SigningKey]:
    return [SigningKey.generate("EdDSA") for _ in range(4)]


def kids(schedule: KeySchedule, now: datetime, state: KeyState) -> list[str]:
    return [entry.kid for entry in schedule.in_state(state, now)]


def published(schedule: KeySchedule, now: datetime) -> set[str]:
    return {jwk["kid"] for jwk in schedule.ring_at(now).jwks()["keys"]}


# --- the schedule -------------------------------------------------------------------------


def test_a_rotated_key_is_published_first_signs_later_and_the_old_one_lingers(
    keys: list[SigningKey],
) -> None:
    old, new = keys[0], keys[1]
    schedule, rotation = KeySchedule.first(old, NOW - AHEAD).rotated(
        new, now=NOW, activate_after=AHEAD, retire_for=RETIRE_FOR
    )

    assert rotation.activates_at == NOW + AHEAD
    assert rotation.publish_until == NOW + AHEAD + RETIRE_FOR
    # Staged: published, not signing.
    before = schedule.ring_at(NOW + AHEAD - S)
    assert before.signing_key.kid == old.kid
    assert published(schedule, NOW) == {old.kid, new.kid}
    assert kids(schedule, NOW, KeyState.STAGED) == [new.kid]
    # Active at activates_at, to the second; the old key retired but published.
    after = schedule.ring_at(NOW + AHEAD)
    assert after.signing_key.kid == new.kid
    assert after.verification_key(old.kid) is not None
    assert after.verification_key(old.kid).private_key is None  # type: ignore[union-attr]
    assert kids(schedule, NOW + AHEAD, KeyState.RETIRED) == [old.kid]
    # Gone once its last token has expired.
    assert published(schedule, rotation.publish_until - S) == {old.kid, new.kid}
    assert published(schedule, rotation.publish_until) == {new.kid}
    assert schedule.next_change_after(NOW) == NOW + AHEAD
    assert schedule.next_change_after(NOW + AHEAD) == rotation.publish_until


def test_a_second_rotation_while_a_key_is_staged_is_refused(keys: list[SigningKey]) -> None:
    schedule, _ = KeySchedule.first(keys[0], NOW).rotated(
        keys[1], now=NOW, activate_after=AHEAD, retire_for=RETIRE_FOR
    )

    with pytest.raises(KeyLifecycleError, match="already staged") as refused:
        schedule.rotated(keys[2], now=NOW + S, activate_after=AHEAD, retire_for=RETIRE_FOR)

    assert "--now" in str(refused.value)
    assert f"authsvc keys retire {keys[1].kid}" in str(refused.value)


def test_rotating_now_signs_at_once_and_withdraws_a_staged_key(keys: list[SigningKey]) -> None:
    staged, _ = KeySchedule.first(keys[0], NOW).rotated(
        keys[1], now=NOW, activate_after=AHEAD, retire_for=RETIRE_FOR
    )

    schedule, rotation = staged.rotated(
        keys[2], now=NOW + S, activate_after=timedelta(0), retire_for=RETIRE_FOR
    )

    assert schedule.ring_at(NOW + S).signing_key.kid == keys[2].kid
    assert rotation.retired.kid == keys[0].kid
    # The staged key never signed: it is simply gone; the compromised one still verifies.
    assert published(schedule, NOW + S) == {keys[2].kid, keys[0].kid}
    assert schedule.entry(keys[1].kid) is None


def test_retiring_a_key_removes_it_at_once(keys: list[SigningKey]) -> None:
    schedule, _ = KeySchedule.first(keys[0], NOW).rotated(
        keys[1], now=NOW, activate_after=timedelta(0), retire_for=RETIRE_FOR
    )

    retired, entry = schedule.retired(keys[0].kid, now=NOW + S)

    assert entry.kid == keys[0].kid
    assert published(retired, NOW + S) == {keys[1].kid}
    assert retired.entry(keys[0].kid) is None


def test_the_key_that_signs_cannot_be_retired(keys: list[SigningKey]) -> None:
    schedule = KeySchedule.first(keys[0], NOW)

    with pytest.raises(KeyLifecycleError, match="rotate --now"):
        schedule.retired(keys[0].kid, now=NOW)
    with pytest.raises(KeyLifecycleError, match="publishes no key"):
        schedule.retired(keys[3].kid, now=NOW)


def test_withdrawing_a_staged_key_keeps_the_active_one_signing(keys: list[SigningKey]) -> None:
    schedule, _ = KeySchedule.first(keys[0], NOW).rotated(
        keys[1], now=NOW, activate_after=AHEAD, retire_for=RETIRE_FOR
    )

    withdrawn, _ = schedule.retired(keys[1].kid, now=NOW + S)

    later = NOW + AHEAD + RETIRE_FOR + timedelta(days=1)
    assert withdrawn.ring_at(later).signing_key.kid == keys[0].kid
    assert withdrawn.next_change_after(NOW + S) is None
    # And a new rotation is allowed again.
    withdrawn.rotated(keys[2], now=NOW + 2 * S, activate_after=AHEAD, retire_for=RETIRE_FOR)


def test_settling_records_states_and_drops_retired_private_halves(keys: list[SigningKey]) -> None:
    schedule, rotation = KeySchedule.first(keys[0], NOW).rotated(
        keys[1], now=NOW, activate_after=AHEAD, retire_for=RETIRE_FOR
    )
    assert schedule.is_settled(NOW)
    assert not schedule.is_settled(NOW + AHEAD)

    settled = schedule.settled(NOW + AHEAD)

    old = settled.entry(keys[0].kid)
    new = settled.entry(keys[1].kid)
    assert old is not None
    assert new is not None
    assert (old.stored_state, new.stored_state) == (KeyState.RETIRED, KeyState.ACTIVE)
    assert old.key.private_key is None
    assert new.key.private_key is not None
    assert [e.kid for e in schedule.settled(rotation.publish_until).entries] == [keys[1].kid]


# --- the directory ------------------------------------------------------------------------


def test_directory_keeps_a_staged_key_private_until_it_has_signed(
    tmp_path: Path,
) -> None:
    directory = KeyDirectory(tmp_path)
    old = directory.generate("ES256", now=NOW - AHEAD)

    rotation = directory.rotate(
        "ES256", RETIRE_FOR.total_seconds(), activate_after_seconds=600, now=NOW
    )

    new = rotation.current
    manifest = json.loads(directory.manifest_path.read_text())
    assert manifest["current"]["kid"] == old.kid  # what an older version would sign with
    assert [entry["kid"] for entry in manifest["staged"]] == [new.kid]
    assert b"PRIVATE KEY" in (tmp_path / f"{old.kid}.pem").read_bytes()
    assert directory.load(NOW).signing_key.kid == old.kid
    # At its time the staged key signs, read from the same files.
    ring = KeyDirectory(tmp_path).load_schedule(NOW + AHEAD, private=True).ring_at(NOW + AHEAD)
    assert ring.signing_key.kid == new.kid
    # That read settled the directory: the old key's file lost its private half.
    assert b"PRIVATE KEY" not in (tmp_path / f"{old.kid}.pem").read_bytes()
    assert json.loads(directory.manifest_path.read_text())["current"]["kid"] == new.kid


def test_directory_retire_deletes_the_key_file(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    old = directory.generate("ES256", now=NOW)
    directory.rotate("ES256", 960, now=NOW)

    directory.retire(old.kid, now=NOW + S)

    assert not (tmp_path / f"{old.kid}.pem").exists()
    assert directory.load(NOW + S).verification_key(old.kid) is None


def test_a_manifest_written_before_the_lifecycle_still_reads(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    current = directory.generate("ES256", now=NOW)
    retired = directory.rotate("ES256", 960, now=NOW).retired
    # What version 1 wrote: no states, no times but a retired key's publish_until.
    legacy = {
        "version": 1,
        "current": {"kid": directory.load(NOW).signing_key.kid, "algorithm": "ES256"},
        "retired": [
            {
                "kid": retired.kid,
                "algorithm": "ES256",
                "publish_until": (NOW + timedelta(seconds=960)).isoformat(),
            }
        ],
    }
    directory.manifest_path.write_text(json.dumps(legacy))
    before = directory.manifest_path.read_bytes()

    ring = directory.load(NOW)

    assert ring.signing_key.kid != current.kid
    assert ring.verification_key(retired.kid) is not None
    assert directory.manifest_path.read_bytes() == before  # nothing due: nothing rewritten
    assert directory.load(NOW + timedelta(seconds=960)).verification_key(retired.kid) is None


def test_a_staged_key_without_its_private_half_is_refused(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    directory.generate("ES256", now=NOW)
    new = directory.rotate("ES256", 960, activate_after_seconds=600, now=NOW).current
    # A staged key must be able to sign at its time: its file keeps the private half.
    (tmp_path / f"{new.kid}.pem").write_bytes(
        new.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    with pytest.raises(KeyConfigurationError, match="no private key for a staged key"):
        directory.load(NOW)


# --- the provider -------------------------------------------------------------------------


class Clocks:
    def __init__(self, now: datetime) -> None:
        self.wall = now
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def test_provider_signs_with_the_staged_key_at_its_time_without_a_reload(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    old = directory.generate("ES256", now=NOW)
    new = directory.rotate("ES256", 960, activate_after_seconds=10, now=NOW).current
    clocks = Clocks(NOW)
    loads: list[datetime] = []

    def load(now: datetime) -> KeySchedule:
        loads.append(now)
        return directory.load_schedule(now)

    provider = KeyRingProvider(
        load,
        revision=directory.revision,
        check_interval_seconds=3600,  # no periodic check: only the schedule may switch keys
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )
    assert provider.current().signing_key.kid == old.kid
    assert new.kid in {jwk["kid"] for jwk in provider.current().jwks()["keys"]}

    clocks.advance(9.999)
    assert provider.current().signing_key.kid == old.kid
    clocks.advance(0.001)
    assert provider.current().signing_key.kid == new.kid
    assert provider.current().verification_key(old.kid) is not None
    assert len(loads) == 1  # switched from the schedule in memory, no reload


def test_pushed_provider_asks_for_a_check_on_an_unknown_kid(keys: list[SigningKey]) -> None:
    asked: list[bool] = []
    clocks = Clocks(NOW)
    provider = KeyRingProvider(
        schedule=KeySchedule.first(keys[0], NOW),
        installed_revision=1,
        on_unknown_kid=lambda: asked.append(True),
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )

    assert provider.verification_key(keys[1].kid) is None
    clocks.advance(1)
    assert provider.verification_key(keys[1].kid) is None
    assert provider.verification_key(keys[1].kid) is None  # at most once a second
    assert asked == [True]

    staged, _ = provider.schedule.rotated(
        keys[1], now=clocks.wall, activate_after=timedelta(seconds=5), retire_for=RETIRE_FOR
    )
    provider.install(staged, 2)
    assert provider.verification_key(keys[1].kid) is not None
    assert provider.revision == 2
    clocks.advance(5)
    assert provider.current().signing_key.kid == keys[1].kid


def test_installing_a_schedule_without_a_signing_key_changes_nothing(
    keys: list[SigningKey],
) -> None:
    provider = KeyRingProvider(
        schedule=KeySchedule.first(keys[0], NOW), installed_revision=1, clock=lambda: NOW
    )
    public_only = KeySchedule.first(keys[1], NOW).settled(NOW)
    broken = KeySchedule((public_only.entries[0].public(),))

    with pytest.raises(KeyConfigurationError, match="no private key"):
        provider.install(broken, 2)

    assert provider.current().signing_key.kid == keys[0].kid
    assert provider.revision == 1
