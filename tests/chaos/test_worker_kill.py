"""SIGKILLed workers and a Redis restart mid-run: every task still SUCCEEDS exactly once.

The 105-job run uses the real `paddock worker` code with a fast stand-in model
(tests/chaos/fake_worker.py: the tiny diffusers models cost ~8 CPU s a job, too much for CI); a
smaller run uses real `paddock worker` processes with the real tiny models;
`loadtests/chaos.py` is the longer, hand-run version (and can use the real tiny models).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.chaos.harness import ChaosConfig, P, chaos_stack

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(240)]


def test_worker_kills_and_redis_restart_lose_nothing(tmp_path: Path) -> None:
    cfg = ChaosConfig(jobs=105, keys=3, workers=3, slots=2, kills=3, claim_timeout_s=6.0)
    with chaos_stack(tmp_path, cfg) as run:
        run.submit_all()
        seconds = run.drive()
        print(run.report(seconds))
        # Recovery: from the SIGKILL until the killed job's next attempt is RUNNING.
        assert len(run.kills) == cfg.kills
        for kill in run.kills:
            assert kill.recovered_s is not None and kill.recovered_s < cfg.claim_timeout_s * 2, kill
        with run.redis() as r, httpx.Client(base_url=run.api.api_url, timeout=30) as client:
            for i, task_id in enumerate(run.task_ids):
                key = run.api.keys[i % len(run.api.keys)]
                body = client.get(f"/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}).json()
                assert body["output"]["task_status"] == "SUCCEEDED", body
                objects = run.result_objects(task_id)
                assert len(objects) == 1, (task_id, objects)
                assert r.hget(f"{P}task:{task_id}", "result_key") == f"results/{task_id}/{objects[0].name}"
            # Nothing left claimed or waiting, nothing dead-lettered.
            assert r.xpending(f"{P}jobs", f"{P}workers")["pending"] == 0
            assert r.xlen(f"{P}jobs") == 0 and r.xlen(f"{P}dead") == 0
            assert not r.keys(f"{P}pending:*") and not r.zcard(f"{P}rotation")


@pytest.mark.timeout(300)
def test_real_paddock_workers_killed_mid_job_lose_nothing(tmp_path: Path) -> None:
    # The same rules with real `paddock worker` processes running the tiny diffusers models.
    cfg = ChaosConfig(
        jobs=10,
        keys=2,
        workers=2,
        slots=2,
        kills=1,
        claim_timeout_s=5.0,
        redis_restart=False,
        deadline_s=240.0,
        real_model=True,
    )
    with chaos_stack(tmp_path, cfg) as run:
        run.submit_all()
        seconds = run.drive()
        print(run.report(seconds))
        assert len(run.kills) == 1
        assert run.kills[0].recovered_s is not None and run.kills[0].recovered_s < cfg.claim_timeout_s * 2
        with httpx.Client(base_url=run.api.api_url, timeout=30) as client:
            for i, task_id in enumerate(run.task_ids):
                key = run.api.keys[i % len(run.api.keys)]
                body = client.get(f"/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}).json()
                assert body["output"]["task_status"] == "SUCCEEDED", body
                assert len(run.result_objects(task_id)) == 1
                video = client.get(body["output"]["video_url"])
                assert video.status_code == 200 and video.content[4:8] == b"ftyp"
