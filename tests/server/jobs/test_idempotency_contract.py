"""Idempotent submits, deletes and oldest-first pages of the TaskQueue contract, on memory:// and a
real redis-server: one key, one task, however many submits race for it."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.jobs import IdempotencyKey, IdempotencyMismatch, TaskFilter, TaskQueue
from server.jobs.job import TaskStatus
from tests.support.records import record


def key(fingerprint: str = "body-a", name: str = "order-42") -> IdempotencyKey:
    return IdempotencyKey(name, fingerprint, ttl_s=3600)


def window() -> TaskFilter:
    now = time.time()
    return TaskFilter(start_time=now - 3600, end_time=now + 3600)


async def test_the_same_key_and_request_is_the_same_task(queue: TaskQueue) -> None:
    first, second = record(), record()
    assert await queue.submit(first, idempotency=key()) == first.task_id
    assert await queue.submit(second, idempotency=key()) == first.task_id
    assert await queue.get(second.task_id) is None
    assert (await queue.list_tasks("t1", window(), 1, 10))[1] == 1
    assert await queue.depth() == 1
    assert await queue.idempotent_task("t1", key()) == (first.task_id, "body-a")


async def test_the_same_key_for_another_request_is_refused(queue: TaskQueue) -> None:
    first = record()
    await queue.submit(first, idempotency=key("body-a"))
    with pytest.raises(IdempotencyMismatch) as refused:
        await queue.submit(record(), idempotency=key("body-b"))
    assert refused.value.task_id == first.task_id
    assert await queue.depth() == 1


async def test_keys_belong_to_one_tenant(queue: TaskQueue) -> None:
    mine, theirs = record(tenant="t1"), record(tenant="t2")
    assert await queue.submit(mine, idempotency=key()) == mine.task_id
    assert await queue.submit(theirs, idempotency=key()) == theirs.task_id
    assert await queue.idempotent_task("t3", key()) is None


async def test_concurrent_duplicates_store_one_task(queue: TaskQueue) -> None:
    racers = [record() for _ in range(12)]
    winners = await asyncio.gather(*(queue.submit(r, idempotency=key()) for r in racers))
    assert len(set(winners)) == 1
    stored = [r for r in racers if await queue.get(r.task_id) is not None]
    assert [r.task_id for r in stored] == [winners[0]]
    assert await queue.depth() == 1


async def test_delete_removes_a_final_task_and_frees_its_key(queue: TaskQueue) -> None:
    rec = record(workspace="ws")
    await queue.submit(rec, idempotency=key())
    assert not await queue.delete(rec.task_id)  # PENDING: not final
    assert await queue.cancel(rec.task_id) is not None
    assert await queue.delete(rec.task_id)
    assert await queue.get(rec.task_id) is None
    assert not await queue.delete(rec.task_id)
    for filters in (window(), TaskFilter(window().start_time, window().end_time, status=TaskStatus.CANCELED)):
        assert await queue.list_tasks("t1", filters, 1, 10) == ([], 0)
    assert await queue.idempotent_task("t1", key()) is None
    again = record()
    assert await queue.submit(again, idempotency=key("body-b")) == again.task_id


async def test_a_running_task_is_not_deleted(queue: TaskQueue) -> None:
    rec = record()
    await queue.submit(rec)
    claim = await queue.claim("w1", timeout_s=1.0)
    assert claim is not None
    assert not await queue.delete(rec.task_id)
    assert await queue.complete(claim, result_key="k", orig_prompt="p")
    assert await queue.delete(rec.task_id)


async def test_pages_oldest_first(queue: TaskQueue) -> None:
    now = time.time()
    recs = [record(submit_time=now - 10 + i) for i in range(5)]
    for rec in recs:
        await queue.submit(rec)
    oldest = [r.task_id for r in recs]
    pages = [await queue.list_tasks("t1", window(), n, 2, oldest_first=True) for n in (1, 2, 3)]
    assert [[r.task_id for r in page] for page, _ in pages] == [oldest[:2], oldest[2:4], oldest[4:]]
    assert {total for _, total in pages} == {5}
    claim = await queue.claim("w1", timeout_s=1.0)
    assert claim is not None
    running = TaskFilter(window().start_time, window().end_time, status=TaskStatus.PENDING)
    page, total = await queue.list_tasks("t1", running, 1, 10, oldest_first=True)
    assert [r.task_id for r in page] == oldest[1:] and total == 4
