"""The list envelope and query parameters every paginated endpoint shares."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

ItemT = TypeVar("ItemT")


class PageOut(BaseModel, Generic[ItemT]):
    """One page of a keyset-paginated list. Pass `next_cursor` back as `cursor` for the next
    page; it is null on the last one."""

    items: list[ItemT]
    next_cursor: str | None


Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[
    str | None,
    Query(max_length=64, description="`next_cursor` of the previous page; omit for the first."),
]
DEFAULT_LIMIT = 50
