"""A webhook delivery outlives the facade that started it: `paddock api` on a real Redis, a
receiver that fails twice, the facade SIGKILLed after the first failure, and a new facade that
makes the second and third attempts. Every attempt verifies with `standardwebhooks` and carries
the same `webhook-id`."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.live_server import paddock_process
from tests.support.webhook_receiver import event_of, new_secret, receiving

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ALICE = "sk-e2e-alice-0123456789"
SECRET = new_secret()
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


def test_a_pending_delivery_survives_a_facade_crash(tmp_path: Path, redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as flush:
        flush.flushdb()
    with receiving([500, 500]) as receiver:
        keys = tmp_path / "keys.yaml"
        alice = {"key": ALICE, "tenant": "alice", "webhook_url": receiver.url, "webhook_secret": SECRET}
        keys.write_text(yaml.safe_dump({"keys": [alice]}))
        env = {
            "PADDOCK_QUEUE_URL": redis_url,
            "PADDOCK_API_KEYS": str(keys),
            "PADDOCK_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "PADDOCK_WEBHOOK_BACKOFF_S": "1.5",
            "PADDOCK_WEBHOOK_POLL_INTERVAL_S": "0.1",
        }
        auth = {"Authorization": f"Bearer {ALICE}", "X-DashScope-Async": "enable"}
        with paddock_process(tmp_path, command="api", env=env, keys=[ALICE]) as first:
            body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "a horse"}}
            created = httpx.post(f"{first.base_url}{CREATE}", json=body, headers=auth)
            task_id = created.json()["output"]["task_id"]
            # No worker: canceling is how this task becomes final (CANCELED), queuing its webhook.
            assert httpx.post(f"{first.api_url}/tasks/{task_id}/cancel", headers=auth).status_code == 200
            receiver.wait_for(1)
            time.sleep(0.5)  # the failed attempt's retry is written to Redis
            first.process.kill()
            first.process.wait()
        assert len(receiver.received) == 1
        with paddock_process(tmp_path, command="api", env=env, keys=[ALICE]):
            posts = receiver.wait_for(3, timeout_s=60)
    assert [p.status for p in posts] == [500, 500, 204]
    assert {p.headers["webhook-id"] for p in posts} == {f"msg_{task_id}"}
    events = [event_of(p, SECRET) for p in posts]
    assert {e["type"] for e in events} == {"task.canceled"}
    assert {e["data"]["output"]["task_id"] for e in events} == {task_id}
    stamps = [int(p.headers["webhook-timestamp"]) for p in posts]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 3  # backoff: 1.5 s, then 3 s
