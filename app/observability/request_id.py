"""Request ids: taken from `X-Request-ID` when sane, else generated (see middleware.py)."""

from __future__ import annotations

import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id_from(value: str | None) -> str:
    """`value` if it is a safe id to echo and log (<= 128 of `[A-Za-z0-9._-]`), else a new one."""
    if value is not None and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex
