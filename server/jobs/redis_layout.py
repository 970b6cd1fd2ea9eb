"""The Redis layout of `RedisTaskQueue` (redis.py): every key it uses, and how a task record is
spread over its hash and read back.

Layout (every key under `prefix`, default `paddock:`; scripts in `redis_scripts.py`):

    {p}task:{id}          hash   json (the record's immutable part), status, attempt, tenant, entry
                                 (current stream entry id), lost (attempts whose worker died), and
                                 the mutable record fields; PEXPIREAT submit_time + ttl (HSET keeps
                                 an existing TTL, so updates never extend it).
    {p}tenant:{tenant}    zset   task ids by submit_time: the list index, trimmed to the TTL window;
    {p}tenant:{tenant}:status:{status}, ...:model:{model}, ...:ws:{workspace}
                          zset   the same for each status, model and workspace: a filtered page is a
                                 ZREVRANGEBYSCORE ... LIMIT over one index or their intersection.
    {p}pending:{tenant}   list   PENDING task ids, oldest first (release pushes to the front).
    {p}rotation           zset   tenants with pending ids, by when they were last served.
    {p}seq                string the served counter behind the rotation's scores.
    {p}quota:{tenant}     hash   running = the tenant's running cap (written by each submit).
    {p}running:{tenant}   zset   the tenant's claimed task ids, scored by record expiry (ms).
    {p}bucket:{tenant}    hash   the submit-rate token bucket.
    {p}wake               list   one token per newly claimable job; idle workers BLPOP it.
    {p}jobs               stream claimed jobs only (`task_id`, `tenant`); MAXLEN ~ stream_maxlen.
    {p}workers            consumer group on {p}jobs; its PEL is the set of claimed jobs.
    {p}dead               stream poison jobs' ids; MAXLEN ~ DEAD_MAXLEN.
    {p}failures           stream `code`, `model` of every task that became FAILED (the operators'
                                 view); MAXLEN ~ FAILURES_MAXLEN.
    {p}idem:{tenant}:{sha256 of the key}
                          hash   task, fp: an Idempotency-Key bound to its task (idempotency.py);
                                 the task's hash names it in `idem`, so deleting the task frees it.
    {p}webhooks, {p}webhook:{id}, {p}webhooks:dead
                                 the webhook outbox (redis_outbox.py), filled by `set_status`.

Why the mutable fields live beside the JSON instead of inside it: the Lua scripts that fence
writes would otherwise have to cjson.decode/encode the record, and Redis's cjson prints numbers
with 14 significant digits and turns empty arrays into `{}`. Here Lua only copies strings that
Python formatted (repr of floats round-trips exactly) and Python merges them on read.

Nothing grows without bound: hashes and index zsets expire with the TTL, lists and quota/running
keys are re-expired on every write, acked entries are XDELed, and both streams are MAXLEN-trimmed.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from server.jobs.job import TaskRecord

# -- key names and limits ------------------------------------------------------------------------
DEFAULT_PREFIX = "paddock:"
TASK_KEY = "{p}task:{task_id}"
STREAM_KEY = "{p}jobs"
GROUP_NAME = "{p}workers"
TENANT_KEY = "{p}tenant:{tenant}"
STATUS_INDEX = "{p}tenant:{tenant}:status:{status}"
MODEL_INDEX = "{p}tenant:{tenant}:model:{model}"
WORKSPACE_INDEX = "{p}tenant:{tenant}:ws:{workspace}"
LIST_SCRATCH = "{p}tenant:{tenant}:scratch"
PENDING_KEY = "{p}pending:{tenant}"
QUOTA_KEY = "{p}quota:{tenant}"
BUCKET_KEY = "{p}bucket:{tenant}"
ROTATION_KEY = "{p}rotation"
SEQ_KEY = "{p}seq"
WAKE_KEY = "{p}wake"
DEAD_KEY = "{p}dead"
PRESENCE_KEY = "{p}presence"  # hash: worker -> {"until": epoch s, "models": [...]}
FAILURES_KEY = "{p}failures"
IDEMPOTENCY_KEY = "{p}idem:{tenant}:{digest}"
FAILURES_MAXLEN = 10_000
STREAM_FIELD = "task_id"
DEAD_MAXLEN = 10_000
SCAN_TENANTS = 1_000  # tenants one claim looks at (all of them, in practice)
RECLAIM_SCAN = 100  # timed-out entries one reclaim looks through (skipped or poison ones)
# Every blocking call (BLPOP) must stay well under the client's socket timeout, or redis-py raises
# TimeoutError mid-block (redis-py 8 defaults socket_timeout to 5 s).
BLOCK_MAX_S = 2.0
SOCKET_TIMEOUT_S = 10.0
# Retries of a command whose connection dropped: 0.1 + 0.2 + 0.4 + 0.8 + 1 + 1 + ... ≈ 8 s.
RETRIES = 10
RETRY_BUDGET_S = 8.0

# Record fields that change after submit: kept as separate hash fields (see module docstring).
MUTABLE_FIELDS = (
    "status",
    "attempt",
    "scheduled_time",
    "end_time",
    "orig_prompt",
    "result_key",
    "code",
    "message",
    "progress_step",
    "progress_total",
)
_FLOATS = frozenset({"scheduled_time", "end_time"})
_INTS = frozenset({"attempt", "progress_step", "progress_total"})


def encode_field(name: str, value: Any) -> str:
    if name in _FLOATS:
        return repr(float(value))
    return str(value.value if isinstance(value, Enum) else value)


def decode_field(name: str, raw: str | None) -> Any:
    if raw is None:
        return None
    if name in _FLOATS:
        return float(raw)
    if name in _INTS:
        return int(raw)
    return raw


def record_fields(**values: Any) -> list[str]:
    """Flatten non-None record fields into HSET's field/value argument list."""
    return [
        part
        for name, value in values.items()
        if value is not None
        for part in (name, encode_field(name, value))
    ]


def frozen_json(record: TaskRecord) -> str:
    body = json.loads(record.to_json())
    for name in MUTABLE_FIELDS:
        body.pop(name, None)
    return json.dumps(body, separators=(",", ":"))


def to_record(row: dict[str, str] | list[str] | None) -> TaskRecord | None:
    """Merge the hash's mutable fields into its JSON; None for a missing (expired) hash."""
    if isinstance(row, list):  # HGETALL returned from Lua: flat [field, value, ...]
        row = dict(zip(row[::2], row[1::2], strict=True))
    if not row or "json" not in row:
        return None
    body = json.loads(row["json"])
    body.update({name: decode_field(name, row.get(name)) for name in MUTABLE_FIELDS})
    return TaskRecord.from_dict(body)
