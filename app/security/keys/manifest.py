"""The key ring's manifest, `keys.json`: every key of the ring with its state and schedule.
This module reads and writes the document; `KeyDirectory` keeps it on disk next to the key
files.

The document keeps the shape of the first version (`current`, `retired`) and adds `staged` and
the times of each key (`created_at`, `activates_at`, `retires_at`, `publish_until`, `state`),
so a manifest written before the lifecycle still reads (its keys active and retired since
ever), and a process of that older version still reads this one: it signs with `current` and
publishes `retired`, ignoring what it does not know.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from app.security.keys.errors import KeyConfigurationError
from app.security.keys.lifecycle import EPOCH, KeyState
from app.security.keys.signing_key import SUPPORTED_ALGORITHMS, Algorithm

MANIFEST_VERSION: Final = 1
# A kid is a base64url SHA-256 thumbprint; checking the shape keeps manifest entries from
# naming files outside the directory.
_KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_SECTIONS: Final = {
    "current": KeyState.ACTIVE,
    "staged": KeyState.STAGED,
    "retired": KeyState.RETIRED,
}


def _moment(data: dict[str, Any], name: str, *, required: bool = False) -> datetime | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ValueError(f"{name} is missing")
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return moment


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One key the manifest names, with the state it was written in and its schedule."""

    kid: str
    algorithm: Algorithm
    state: KeyState = KeyState.ACTIVE
    activates_at: datetime = EPOCH
    retires_at: datetime | None = None
    publish_until: datetime | None = None
    created_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any, *, state: KeyState) -> ManifestEntry:
        """The entry `data` describes in the section of keys in `state`; `ValueError` if it
        is malformed."""
        if not isinstance(data, dict):
            raise ValueError("an entry is not an object")
        kid, algorithm = data.get("kid"), data.get("algorithm")
        if not isinstance(kid, str) or not _KID_PATTERN.fullmatch(kid):
            raise ValueError(f"bad kid {kid!r}")
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"bad algorithm {algorithm!r}")
        retired = state is KeyState.RETIRED
        activates_at = _moment(data, "activates_at", required=state is KeyState.STAGED)
        retires_at = _moment(data, "retires_at")
        return cls(
            kid,
            algorithm,
            state,
            activates_at=activates_at or EPOCH,
            # Written before the lifecycle: a retired key retired at some unknown past moment.
            retires_at=retires_at or (EPOCH if retired else None),
            publish_until=_moment(data, "publish_until", required=retired),
            created_at=_moment(data, "created_at"),
        )

    def to_json(self) -> dict[str, str]:
        data = {"kid": self.kid, "algorithm": self.algorithm, "state": self.state.value}
        for name in ("created_at", "activates_at", "retires_at", "publish_until"):
            moment: datetime | None = getattr(self, name)
            if moment is not None:
                data[name] = moment.astimezone(UTC).isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Manifest:
    """The active key (`current`), the staged keys and the retired ones, newest first."""

    current: ManifestEntry
    retired: tuple[ManifestEntry, ...] = ()
    staged: tuple[ManifestEntry, ...] = ()

    @property
    def entries(self) -> tuple[ManifestEntry, ...]:
        return (*self.staged, self.current, *self.retired)

    @classmethod
    def of(cls, entries: list[ManifestEntry]) -> Manifest:
        """The manifest of `entries`, sorted into sections by state; exactly one is active."""
        active = [entry for entry in entries if entry.state is KeyState.ACTIVE]
        if len(active) != 1:
            raise KeyConfigurationError(f"a key ring needs one active key, not {len(active)}")
        return cls(
            current=active[0],
            retired=tuple(e for e in entries if e.state is KeyState.RETIRED),
            staged=tuple(e for e in entries if e.state is KeyState.STAGED),
        )

    @classmethod
    def from_bytes(cls, raw: bytes, *, path: Path) -> Manifest:
        """The manifest `raw` holds; `KeyConfigurationError` naming `path` if it is corrupt."""
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("version") != MANIFEST_VERSION:
                raise ValueError(f"unknown manifest version in {path}")
            sections: dict[str, list[ManifestEntry]] = {}
            for name, state in _SECTIONS.items():
                listed = document.get(name, [])
                if name == "current":
                    listed = [listed]
                elif not isinstance(listed, list):
                    raise ValueError(f"`{name}` is not a list")
                sections[name] = [ManifestEntry.from_json(item, state=state) for item in listed]
            return cls(
                current=sections["current"][0],
                retired=tuple(sections["retired"]),
                staged=tuple(sections["staged"]),
            )
        except (ValueError, TypeError) as exc:
            raise KeyConfigurationError(f"{path} is corrupt: {exc}") from exc

    def to_bytes(self) -> bytes:
        document = {
            "version": MANIFEST_VERSION,
            "current": self.current.to_json(),
            "staged": [entry.to_json() for entry in self.staged],
            "retired": [entry.to_json() for entry in self.retired],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")
