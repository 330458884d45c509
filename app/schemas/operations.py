"""Response bodies of the health probes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class LiveStatus(BaseModel):
    status: Literal["ok"]


class ReadyStatus(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
    schema_revision: str | None
    expected_revision: str | None
