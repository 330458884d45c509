"""The key ring's manifest, `keys.json`: which key is current and which retired keys are
published until when. This module reads and writes the document; `KeyDirectory` keeps it on
disk next to the key files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from app.security.keys.errors import KeyConfigurationError
from app.security.keys.signing_key import SUPPORTED_ALGORITHMS, Algorithm

MANIFEST_VERSION: Final = 1
# A kid is a base64url SHA-256 thumbprint; checking the shape keeps manifest entries from
# naming files outside the directory.
_KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One key the manifest names. Retired keys carry `publish_until`; the current key none."""

    kid: str
    algorithm: Algorithm
    publish_until: datetime | None = None

    @classmethod
    def from_json(cls, data: Any, *, retired: bool) -> ManifestEntry:
        """The entry `data` describes; `ValueError` if it is malformed."""
        if not isinstance(data, dict):
            raise ValueError("an entry is not an object")
        kid, algorithm = data.get("kid"), data.get("algorithm")
        if not isinstance(kid, str) or not _KID_PATTERN.fullmatch(kid):
            raise ValueError(f"bad kid {kid!r}")
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"bad algorithm {algorithm!r}")
        publish_until = None
        if retired:
            publish_until = datetime.fromisoformat(str(data.get("publish_until")))
            if publish_until.tzinfo is None:
                raise ValueError("publish_until has no time zone")
        return cls(kid, algorithm, publish_until)

    def is_published_at(self, now: datetime) -> bool:
        return self.publish_until is None or now < self.publish_until

    def to_json(self) -> dict[str, str]:
        data = {"kid": self.kid, "algorithm": self.algorithm}
        if self.publish_until is not None:
            data["publish_until"] = self.publish_until.astimezone(UTC).isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Manifest:
    """The current key and the retired ones, newest retired first."""

    current: ManifestEntry
    retired: tuple[ManifestEntry, ...] = ()

    @classmethod
    def from_bytes(cls, raw: bytes, *, path: Path) -> Manifest:
        """The manifest `raw` holds; `KeyConfigurationError` naming `path` if it is corrupt."""
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("version") != MANIFEST_VERSION:
                raise ValueError(f"unknown manifest version in {path}")
            retired = document.get("retired", [])
            if not isinstance(retired, list):
                raise ValueError("`retired` is not a list")
            return cls(
                current=ManifestEntry.from_json(document.get("current"), retired=False),
                retired=tuple(ManifestEntry.from_json(entry, retired=True) for entry in retired),
            )
        except (ValueError, TypeError) as exc:
            raise KeyConfigurationError(f"{path} is corrupt: {exc}") from exc

    def to_bytes(self) -> bytes:
        document = {
            "version": MANIFEST_VERSION,
            "current": self.current.to_json(),
            "retired": [entry.to_json() for entry in self.retired],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")
