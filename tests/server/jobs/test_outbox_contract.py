"""The webhook outbox contract (server/jobs/outbox.py), on memory:// and a real redis-server: every
way a task becomes final queues its delivery in the same step, leases hide claimed deliveries,
retries come back later as the next attempt, dead letters are kept, and on Redis deliveries
outlive the process that queued them."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis

from server.jobs import Claim, Delivery, RedisTaskQueue, TaskQueue, make_task_queue
from server.jobs.job import TaskRecord, TaskStatus
from tests.redis_server import QueueFactory
from tests.support.records import record

HOOK = "https://hooks.example.com/paddock"


def hooked(**kw: object) -> TaskRecord:
    return dataclasses.replace(record(**kw), webhook_url=HOOK)  # type: ignore[arg-type]


async def claim_job(queue: TaskQueue) -> Claim:
    found = await queue.claim("w1", timeout_s=1.0)
    assert found is not None
    return found


async def claim_deliveries(queue: TaskQueue, lease_s: float = 30.0) -> list[Delivery]:
    return await queue.webhooks.claim(count=10, lease_s=lease_s)


async def test_every_final_state_queues_one_delivery(queue: TaskQueue) -> None:
    succeeded, failed, canceled = hooked(), hooked(), hooked()
    for rec in (succeeded, failed, canceled):
        await queue.submit(rec)
    assert await queue.webhooks.waiting() == 0
    assert await queue.cancel(canceled.task_id) is not None
    done = await claim_job(queue)
    assert await queue.complete(done, result_key="results/x/1.mp4", orig_prompt="p")
    broken = await claim_job(queue)
    assert await queue.fail(broken, code="InternalError.Algo", message="boom")
    deliveries = {d.task_id: d for d in await claim_deliveries(queue)}
    statuses = {d.task_id: d.status for d in deliveries.values()}
    assert statuses == {
        canceled.task_id: "CANCELED",
        done.task_id: "SUCCEEDED",
        broken.task_id: "FAILED",
    }
    for delivery in deliveries.values():
        assert (delivery.url, delivery.tenant, delivery.attempt) == (HOOK, "t1", 1)
        assert delivery.id == f"msg_{delivery.task_id}"


async def test_tasks_without_a_webhook_queue_nothing(queue: TaskQueue) -> None:
    await queue.submit(record())
    claim = await claim_job(queue)
    assert await queue.complete(claim, result_key="k", orig_prompt="p")
    assert await queue.webhooks.waiting() == 0


async def test_a_fenced_out_commit_queues_nothing_more(queue: TaskQueue) -> None:
    await queue.submit(hooked())
    claim = await claim_job(queue)
    assert await queue.complete(claim, result_key="k", orig_prompt="p")
    assert not await queue.fail(claim, code="InternalError", message="late")
    assert [d.status for d in await claim_deliveries(queue)] == ["SUCCEEDED"]


async def test_a_poison_job_queues_its_failure(
    make_queue: QueueFactory, queue_backend: str, request: pytest.FixtureRequest
) -> None:
    # make_queue flushed Redis; this queue needs a short claim timeout and one attempt.
    url = request.getfixturevalue("redis_url") if queue_backend == "redis" else "memory://"
    queue = make_task_queue(url, ttl_s=3600, claim_timeout_s=0.2, max_attempts=1)
    try:
        rec = hooked()
        await queue.submit(rec)
        await claim_job(queue)  # its worker "dies": no heartbeat
        await asyncio.sleep(0.3)
        assert await queue.reclaim("w2") is None  # poisoned, not handed out again
        assert [(d.task_id, d.status) for d in await claim_deliveries(queue)] == [(rec.task_id, "FAILED")]
    finally:
        await queue.close()


async def test_a_claim_is_hidden_for_its_lease(make_queue: QueueFactory) -> None:
    first = make_queue()
    # Two facades on one Redis; in memory there is one process, so one queue.
    second = make_queue() if isinstance(first, RedisTaskQueue) else first
    rec = hooked()
    await first.submit(rec)
    assert await first.cancel(rec.task_id) is not None
    mine = await first.webhooks.claim(count=10, lease_s=0.3)
    assert [d.task_id for d in mine] == [rec.task_id]
    assert await first.webhooks.claim(count=10, lease_s=0.3) == []
    if isinstance(first, RedisTaskQueue):
        assert await second.webhooks.claim(count=10, lease_s=0.3) == []
    await asyncio.sleep(0.4)  # the lease runs out: a facade that died mid-POST is covered
    assert [d.attempt for d in await second.webhooks.claim(count=10, lease_s=30)] == [1]


async def test_retry_comes_back_later_as_the_next_attempt(queue: TaskQueue) -> None:
    rec = hooked()
    await queue.submit(rec)
    await queue.cancel(rec.task_id)
    (delivery,) = await claim_deliveries(queue)
    await queue.webhooks.retry(delivery, delay_s=0.3)
    assert await claim_deliveries(queue) == []
    assert await queue.webhooks.waiting() == 1
    await asyncio.sleep(0.4)
    (again,) = await claim_deliveries(queue)
    assert (again.task_id, again.attempt) == (rec.task_id, 2)
    await queue.webhooks.succeeded(again)
    assert await queue.webhooks.waiting() == 0
    await asyncio.sleep(0.4)
    assert await claim_deliveries(queue) == []


async def test_dead_letters_are_kept_newest_first(queue: TaskQueue) -> None:
    recs = [hooked(), hooked()]
    for rec in recs:
        await queue.submit(rec)
        await queue.cancel(rec.task_id)
    for delivery in sorted(await claim_deliveries(queue), key=lambda d: d.task_id):
        await queue.webhooks.dead_letter(delivery, reason=f"gave up on {delivery.task_id}")
    assert await queue.webhooks.waiting() == 0
    dead = await queue.webhooks.dead()
    assert [d.task_id for d in dead] == sorted((r.task_id for r in recs), reverse=True)
    assert dead[0].url == HOOK and dead[0].attempts == 1 and dead[0].reason.startswith("gave up on")


async def test_deleting_a_task_drops_its_waiting_delivery(queue: TaskQueue) -> None:
    rec = hooked()
    await queue.submit(rec)
    await queue.cancel(rec.task_id)
    assert await queue.delete(rec.task_id)
    assert await queue.webhooks.waiting() == 0
    assert await claim_deliveries(queue) == []


@pytest.mark.redis
async def test_redis_deliveries_outlive_the_process_that_queued_them(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as flush:
        flush.flushdb()
    before = make_task_queue(redis_url, ttl_s=3600)
    rec = hooked()
    await before.submit(rec)
    await before.cancel(rec.task_id)
    await before.close()  # every facade stops
    after = make_task_queue(redis_url, ttl_s=3600)
    try:
        (delivery,) = await after.webhooks.claim(count=10, lease_s=30)
        assert (delivery.task_id, delivery.status) == (rec.task_id, TaskStatus.CANCELED.value)
    finally:
        await after.close()
