"""`BaseRepository[T]`: the generic data access every entity repository shares.

Repositories flush so that database constraints and defaults surface inside the use case, but
they never commit: the service that called them owns the transaction.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    UniqueConstraint,
    delete,
    exists,
    false,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidCursor
from app.models.base import UUIDPrimaryKey

ModelT = TypeVar("ModelT", bound=UUIDPrimaryKey)


class UniqueViolation(IntegrityError):
    """A write collided with a single-column unique constraint; `field` names the column.

    Still an `IntegrityError`, so callers that only care that the write failed need not know.
    """

    def __init__(self, error: IntegrityError, field: str) -> None:
        super().__init__(error.statement, error.params, error.orig)  # type: ignore[arg-type]
        self.field = field


@dataclass(frozen=True, slots=True)
class Page(Generic[ModelT]):
    items: list[ModelT]
    next_cursor: str | None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(cursor) from exc


class BaseRepository(Generic[ModelT]):
    """Generic CRUD over one mapped class with a UUID primary key `id`.

    Subclasses set `model` and add the queries specific to their entity.
    """

    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- building blocks -------------------------------------------------------------------

    def _filters(self, filters: Mapping[str, Any]) -> list[ColumnElement[bool]]:
        return [getattr(self.model, name) == value for name, value in filters.items()]

    def _select(self, *where: ColumnElement[bool], **filters: Any) -> Select[ModelT]:
        return select(self.model).where(*where, *self._filters(filters))

    # --- create ----------------------------------------------------------------------------

    async def create(self, **values: Any) -> ModelT:
        """Insert a row and return it with defaults loaded. Constraint errors raise here."""
        entity: ModelT = self.model(**values)
        return await self.add(entity)

    async def add(self, entity: ModelT) -> ModelT:
        self.session.add(entity)
        await self._flush()
        await self._refresh_if_stale(entity)
        return entity

    async def add_all(self, entities: Iterable[ModelT]) -> None:
        """Insert many rows with one flush (batched by the driver); nothing is reloaded."""
        self.session.add_all(entities)
        await self._flush()

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except IntegrityError as error:
            field = self._unique_field_named_in(error)
            if field is None:
                raise
            raise UniqueViolation(error, field) from error

    def _unique_field_named_in(self, error: IntegrityError) -> str | None:
        # PostgreSQL names the constraint (uq_users_email), SQLite the column (users.email);
        # both names are known from the model, so no dialect-specific error codes are needed.
        message = str(error.orig)
        table = inspect(self.model).local_table
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and len(constraint.columns) == 1:
                column = next(iter(constraint.columns)).name
                if f'"{constraint.name}"' in message or f"{table.name}.{column}" in message:
                    return column
        return None

    async def _refresh_if_stale(self, entity: ModelT) -> None:
        # Load only what is not yet known (server-filled columns, relationships): a refresh of
        # a row whose every column was just written costs a round trip and returns nothing new.
        unloaded = inspect(entity).unloaded
        if unloaded:
            await self.session.refresh(entity, attribute_names=list(unloaded))

    async def _serialize_writers_on_sqlite(self) -> None:
        # SQLite has no row locks, and its driver starts a transaction only at the first
        # write, so a read-decide-write sequence would see stale data. A write that matches
        # nothing takes the database's write lock first: concurrent writers then queue (busy
        # timeout) and read fresh data, as `SELECT ... FOR UPDATE` makes them on PostgreSQL.
        if self.session.get_bind().dialect.name == "sqlite":
            table = inspect(self.model).local_table
            await self.session.execute(update(table).where(false()).values(id=table.c.id))

    # --- read ------------------------------------------------------------------------------

    async def get_by_id(self, entity_id: uuid.UUID) -> ModelT | None:
        entity: ModelT | None = await self.session.get(self.model, entity_id)
        return entity

    async def get_one_by(self, *where: ColumnElement[bool], **filters: Any) -> ModelT | None:
        result = await self.session.execute(self._select(*where, **filters).limit(1))
        return result.scalars().first()

    async def list_by(
        self, *where: ColumnElement[bool], limit: int | None = None, **filters: Any
    ) -> list[ModelT]:
        statement = self._select(*where, **filters).order_by(self.model.id).limit(limit)
        result = await self.session.execute(statement)
        return list(result.scalars().all())

    async def list_page(
        self,
        *where: ColumnElement[bool],
        limit: int,
        cursor: str | None = None,
        newest_first: bool = False,
        **filters: Any,
    ) -> Page[ModelT]:
        """One page in primary-key order (creation order: ids are UUIDv7), continuing after
        `cursor`; `newest_first` walks from the newest row back.

        Keyset pagination: a page is defined by the last id seen, not an offset, so rows
        inserted or deleted elsewhere never shift, duplicate or skip the rows still to come.
        """
        statement = self._select(*where, **filters)
        key = self.model.id
        if cursor is not None:
            last = decode_cursor(cursor)
            statement = statement.where(key < last if newest_first else key > last)
        statement = statement.order_by(key.desc() if newest_first else key).limit(limit + 1)
        rows = list((await self.session.execute(statement)).scalars().all())
        has_more = len(rows) > limit
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1].id) if has_more and items else None
        return Page(items=items, next_cursor=next_cursor)

    async def count(self, *where: ColumnElement[bool], **filters: Any) -> int:
        statement = select(func.count()).select_from(self.model)
        statement = statement.where(*where, *self._filters(filters))
        return int((await self.session.execute(statement)).scalar_one())

    async def exists(self, *where: ColumnElement[bool], **filters: Any) -> bool:
        statement = select(exists().where(*where, *self._filters(filters)))
        return bool((await self.session.execute(statement)).scalar_one())

    # --- update ----------------------------------------------------------------------------

    async def update(self, entity: ModelT, **values: Any) -> ModelT:
        """Set attributes on a loaded entity and flush them."""
        for name, value in values.items():
            if not hasattr(type(entity), name):
                raise AttributeError(f"{type(entity).__name__} has no attribute {name!r}")
            setattr(entity, name, value)
        await self._flush()
        await self._refresh_if_stale(entity)
        return entity

    async def update_many(
        self, ids: Iterable[uuid.UUID], *where: ColumnElement[bool], **values: Any
    ) -> list[uuid.UUID]:
        """Update the rows whose id is in `ids` (and that meet `where`) with one statement;
        return the ids of the rows changed."""
        id_list = list(ids)
        if not id_list:
            return []
        statement = update(self.model).where(self.model.id.in_(id_list), *where).values(**values)
        return await self._returning_ids(statement)

    # --- delete ----------------------------------------------------------------------------

    async def delete(self, entity_id: uuid.UUID) -> bool:
        """Delete by id; True when a row matched."""
        return bool(await self.delete_many([entity_id]))

    async def delete_many(
        self, ids: Iterable[uuid.UUID], *where: ColumnElement[bool]
    ) -> list[uuid.UUID]:
        """Delete the rows whose id is in `ids` (and that meet `where`) with one statement;
        return the ids of the rows deleted."""
        id_list = list(ids)
        if not id_list:
            return []
        statement = delete(self.model).where(self.model.id.in_(id_list), *where)
        return await self._returning_ids(statement)

    async def _returning_ids(self, statement: Any) -> list[uuid.UUID]:
        # RETURNING (PostgreSQL, SQLite >= 3.35) says which rows changed in the same round
        # trip, and lets the session's "auto" synchronisation update or evict objects it has
        # already loaded, so callers never read a stale copy of a row changed here.
        result = await self.session.execute(statement.returning(self.model.id))
        return list(result.scalars().all())
