"""The service transaction boundary: all of a use case is kept, or none of it."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.repositories import RoleRepository, UserRepository
from app.services.common.unit_of_work import unit_of_work


async def test_finished_unit_of_work_is_committed(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session, unit_of_work(session):
        await UserRepository(session).create(email="ada@example.com")

    async with session_factory() as other:
        assert await UserRepository(other).exists(email="ada@example.com")


async def test_failing_unit_of_work_leaves_nothing_behind(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        with pytest.raises(IntegrityError):
            async with unit_of_work(session):
                await RoleRepository(session).create(name="support")
                await UserRepository(session).create(email="ada@example.com")
                await UserRepository(session).create(email="ada@example.com")

    async with session_factory() as other:
        assert await UserRepository(other).count() == 0
        assert await RoleRepository(other).get_by_name("support") is None


async def test_session_is_usable_after_a_rolled_back_unit_of_work(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        with pytest.raises(RuntimeError):
            async with unit_of_work(session):
                await UserRepository(session).create(email="ada@example.com")
                raise RuntimeError("business rule failed")
        async with unit_of_work(session):
            await UserRepository(session).create(email="bob@example.com")

    async with session_factory() as other:
        assert [u.email for u in await UserRepository(other).list_by()] == ["bob@example.com"]
