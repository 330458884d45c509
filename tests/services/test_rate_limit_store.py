"""The slot stores behind the rate limits: atomic under concurrency, exact over time, in
memory and in a real Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from app.services.common.rate_limit_store import MemorySlotStore, RedisSlotStore, Slot, SlotStore

REDIS_URL = os.environ.get("AUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SlotStore]:
    if request.param == "memory":
        yield MemorySlotStore()
        return
    redis_store = RedisSlotStore(REDIS_URL, f"authsvc-test-{uuid.uuid4().hex}", 2.0)
    try:
        yield redis_store
    finally:
        await redis_store.close()


async def test_fifty_concurrent_takes_get_exactly_the_limit(store: SlotStore) -> None:
    taken = await asyncio.gather(*(store.take("k", 10, 60) for _ in range(50)))

    assert sum(isinstance(result, Slot) for result in taken) == 10
    waits = [result for result in taken if not isinstance(result, Slot)]
    assert all(0 < wait <= 60 for wait in waits)


async def test_a_slot_given_back_can_be_taken_again(store: SlotStore) -> None:
    first = await store.take("k", 1, 60)
    assert isinstance(first, Slot)
    assert not isinstance(await store.take("k", 1, 60), Slot)

    await store.give_back(first)

    assert isinstance(await store.take("k", 1, 60), Slot)


async def test_keys_and_clear_are_independent(store: SlotStore) -> None:
    assert isinstance(await store.take("a", 1, 60), Slot)
    assert isinstance(await store.take("b", 1, 60), Slot)
    await store.clear("a")

    assert isinstance(await store.take("a", 1, 60), Slot)
    assert not isinstance(await store.take("b", 1, 60), Slot)


async def test_the_window_moves_no_burst_at_its_edge(store: SlotStore) -> None:
    assert isinstance(await store.take("k", 2, 2), Slot)
    await asyncio.sleep(1.0)
    assert isinstance(await store.take("k", 2, 2), Slot)
    wait = await store.take("k", 2, 2)
    assert not isinstance(wait, Slot)
    assert 0.5 < wait <= 1.1  # the first slot frees up first

    await asyncio.sleep(1.2)  # the first slot has left the window, the second has not
    assert isinstance(await store.take("k", 2, 2), Slot)
    assert not isinstance(await store.take("k", 2, 2), Slot)
