"""`WebhookOutbox` on Redis (the contract: `outbox.py`).

    {p}webhooks          zset   task id -> when its delivery is next due (epoch ms, Redis's clock);
                                a claimed delivery is pushed `lease` into the future (hidden).
    {p}webhook:{id}      hash   task_id, tenant, url, status, attempt (failed attempts so far);
                                expires with the task's record.
    {p}webhooks:dead     stream dead letters: task_id, url, attempts, reason; MAXLEN ~ DEAD_KEPT.

Deliveries are added by the queue's own scripts, in the step that makes a task final (the `notify`
helper of `redis_scripts`), so they persist with the record: a restart of every facade loses none.
Due times use Redis's clock (`TIME`) throughout, so facades with skewed clocks agree.
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis

from server.jobs.outbox import DEAD_KEPT, DeadDelivery, Delivery

DUE_KEY = "{p}webhooks"
DELIVERY_KEY = "{p}webhook:{task_id}"
DEAD_KEY = "{p}webhooks:dead"

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: due zset. ARGV: prefix, count, lease_ms. Takes due deliveries and hides them for the lease
# in one step, so two facades never hold the same delivery at once (until a lease runs out).
CLAIM = (
    _NOW
    + """
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))) do
  local row = redis.call('HGETALL', ARGV[1] .. 'webhook:' .. id)
  if #row == 0 then
    redis.call('ZREM', KEYS[1], id)  -- the record (and its delivery) expired
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
    table.insert(out, row)
  end
end
return out
"""
)

# KEYS: due zset, delivery hash. ARGV: task_id, delay_ms. XX: a delivery another facade finished
# meanwhile stays finished.
RETRY = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'attempt', 1)
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
"""
)

# KEYS: due zset, delivery hash, dead stream. ARGV: task_id, url, attempts, reason, maxlen.
DEAD_LETTER = """
if redis.call('DEL', KEYS[2]) == 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
  'task_id', ARGV[1], 'url', ARGV[2], 'attempts', ARGV[3], 'reason', ARGV[4])
return 1
"""


class RedisOutbox:
    """The outbox of a `RedisTaskQueue` (same client, same prefix)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._due = DUE_KEY.format(p=prefix)
        self._dead = DEAD_KEY.format(p=prefix)
        self._scripts = {
            "claim": client.register_script(CLAIM),
            "retry": client.register_script(RETRY),
            "dead": client.register_script(DEAD_LETTER),
        }

    def _delivery_key(self, task_id: str) -> str:
        return DELIVERY_KEY.format(p=self._prefix, task_id=task_id)

    async def claim(self, *, count: int, lease_s: float) -> list[Delivery]:
        rows = await self._scripts["claim"](keys=[self._due], args=[self._prefix, count, int(lease_s * 1000)])
        return [_to_delivery(row) for row in cast("list[list[str]]", rows)]

    async def succeeded(self, delivery: Delivery) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._due, delivery.task_id)
        pipe.delete(self._delivery_key(delivery.task_id))
        await pipe.execute()

    async def retry(self, delivery: Delivery, *, delay_s: float) -> None:
        keys = [self._due, self._delivery_key(delivery.task_id)]
        await self._scripts["retry"](keys=keys, args=[delivery.task_id, int(delay_s * 1000)])

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        keys = [self._due, self._delivery_key(delivery.task_id), self._dead]
        args: list[str | int] = [delivery.task_id, delivery.url, delivery.attempt, reason, DEAD_KEPT]
        await self._scripts["dead"](keys=keys, args=args)

    async def waiting(self) -> int:
        return int(await self._redis.zcard(self._due))

    async def dead(self, count: int = 100) -> list[DeadDelivery]:
        rows = cast("list[tuple[str, dict[str, str]]]", await self._redis.xrevrange(self._dead, count=count))
        return [DeadDelivery(f["task_id"], f["url"], int(f["attempts"]), f["reason"]) for _id, f in rows]


def _to_delivery(row: list[Any]) -> Delivery:
    fields = dict(zip(row[::2], row[1::2], strict=True))
    return Delivery(
        task_id=fields["task_id"],
        tenant=fields["tenant"],
        url=fields["url"],
        status=fields["status"],
        attempt=int(fields.get("attempt", 0)) + 1,
    )
