"""SIGTERM: a worker stops claiming, lets jobs run for the grace period, then hands them back,
so another worker takes them at once instead of after the claim timeout."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.chaos.harness import ChaosConfig, P, chaos_stack

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(180)]


def test_sigterm_hands_a_running_job_back_and_the_next_worker_finishes_it(tmp_path: Path) -> None:
    # Jobs take 8 x 1 s, the grace is 2 s (harness), and the claim timeout 30 s: only a hand-back
    # can get the job going again quickly.
    cfg = ChaosConfig(
        jobs=1,
        keys=1,
        workers=1,
        slots=1,
        kills=0,
        claim_timeout_s=30.0,
        step_s=1.0,
        steps=8,
        redis_restart=False,
    )
    with chaos_stack(tmp_path, cfg) as run, run.redis() as r:
        run.submit_all()
        task_key = f"{P}task:{run.task_ids[0]}"
        wait_until(lambda: r.hget(task_key, "progress_step") not in (None, ""), 60)
        ((name, proc),) = run.workers.items()
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        exit_s = time.monotonic() - stopped_at
        assert proc.returncode == 0
        assert r.hget(task_key, "status") == "PENDING"  # handed back, not left RUNNING
        run.workers.pop(name)
        run.start_worker()
        wait_until(lambda: r.hget(task_key, "status") == "SUCCEEDED", 90)
        recovered_s = time.monotonic() - stopped_at
        print(f"sigterm: worker exited after {exit_s:.1f}s, job done {recovered_s:.1f}s after the signal")
        assert exit_s < 2.0 + 8.0  # the grace, then the hand-back; not the whole job
        assert recovered_s < cfg.claim_timeout_s  # taken at once, not reclaimed after the timeout
        with httpx.Client(base_url=run.api.api_url, timeout=30) as client:
            body = client.get(
                f"/tasks/{run.task_ids[0]}", headers={"Authorization": f"Bearer {run.api.keys[0]}"}
            ).json()
        assert body["output"]["task_status"] == "SUCCEEDED"
        assert len(run.result_objects(run.task_ids[0])) == 1


def wait_until(condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met")
