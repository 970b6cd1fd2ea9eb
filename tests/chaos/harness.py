"""The chaos run shared by `tests/chaos/test_worker_kill.py` and `loadtests/chaos.py`.

A real redis-server (AOF, restartable), the facade (`paddock api`) and several workers
(`tests.chaos.fake_worker`: the real worker with a fast stand-in model). Jobs go in through
plain HTTP POSTs with the DashScope headers; workers are SIGKILLed mid-job and restarted, and
Redis is restarted once; then every task must have SUCCEEDED exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.chaos.redis_proc import RedisProcess
from tests.live_server import REPO, LiveServer, paddock_process

CREATE = "/services/aigc/video-generation/video-synthesis"
JOB = {
    "model": "happyhorse-1.0-t2v",
    "input": {"prompt": "a horse"},
    "parameters": {"resolution": "720P", "duration": 3},
}
P = "paddock:"


@dataclass
class Kill:
    """One SIGKILL: which job it interrupted and when its next attempt started."""

    worker: str
    task_id: str
    attempt: int
    at: float
    recovered_s: float | None = None


@dataclass
class ChaosConfig:
    """The knobs of one run."""

    jobs: int = 105
    keys: int = 3
    workers: int = 3
    slots: int = 2
    kills: int = 3
    claim_timeout_s: float = 6.0
    step_s: float = 0.25
    steps: int = 8
    redis_restart: bool = True
    deadline_s: float = 150.0
    real_model: bool = False  # `paddock worker` with the real tiny models (slow: ~8 CPU s a job)


@dataclass
class ChaosRun:
    """Processes and measurements of one run (use `chaos_stack` to start and stop it)."""

    cfg: ChaosConfig
    tmp: Path
    redis_server: RedisProcess
    api: LiveServer
    env: dict[str, str]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    redis_down_s: float = 0.0
    _generation: int = 0

    # -- processes --------------------------------------------------------------------------
    def start_worker(self) -> str:
        self._generation += 1
        name = f"w{self._generation}"
        env = {**os.environ, **self.env, "PADDOCK_WORKER_NAME": name}
        log = (self.tmp / f"worker-{name}.log").open("wb")
        module = "server" if self.cfg.real_model else "tests.chaos.fake_worker"
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", module, "worker"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        return name

    def kill_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.workers.values():
            proc.terminate()
        for proc in self.workers.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    # -- traffic ----------------------------------------------------------------------------
    def submit_all(self) -> None:
        with httpx.Client(base_url=self.api.api_url, timeout=30) as client:
            for i in range(self.cfg.jobs):
                key = self.api.keys[i % len(self.api.keys)]
                headers = {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"}
                response = client.post(CREATE, json=JOB, headers=headers)
                assert response.status_code == 200, response.text
                self.task_ids.append(response.json()["output"]["task_id"])

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url, decode_responses=True, socket_timeout=5)

    # -- chaos ------------------------------------------------------------------------------
    def mid_job_victim(self, r: redis.Redis) -> Kill | None:
        """A live worker's job that has started stepping and is not near its end."""
        if not r.exists(f"{P}jobs"):  # no worker has claimed yet
            return None
        owners = {
            p["message_id"]: p["consumer"]
            for p in r.xpending_range(f"{P}jobs", f"{P}workers", "-", "+", 1000)
        }
        for task_id in self.task_ids:
            st, attempt, step, entry = r.hmget(
                f"{P}task:{task_id}", "status", "attempt", "progress_step", "entry"
            )
            owner = owners.get(entry or "")
            if st == "RUNNING" and owner in self.workers and step and self._mid_job(int(step)):
                return Kill(owner, task_id, int(attempt or 0), 0.0)
        return None

    def _mid_job(self, step: int) -> bool:
        """Stepping has begun and the job is not about to end. The real tiny models denoise in
        a blink and then spend seconds decoding and encoding, which is still mid-job."""
        return step >= 1 and (self.cfg.real_model or step <= self.cfg.steps - 3)

    def kill_one(self, r: redis.Redis) -> Kill | None:
        victim = self.mid_job_victim(r)
        if victim is None:
            return None
        self.kill_worker(victim.worker)
        victim.at = time.monotonic()
        self.kills.append(victim)
        self.start_worker()
        return victim

    def watch_recoveries(self, r: redis.Redis) -> None:
        for kill in self.kills:
            if kill.recovered_s is None:
                fields = r.hmget(f"{P}task:{kill.task_id}", "status", "attempt")
                if int(fields[1] or 0) > kill.attempt and fields[0] in ("RUNNING", "SUCCEEDED"):
                    kill.recovered_s = time.monotonic() - kill.at

    def statuses(self, r: redis.Redis) -> dict[str, str | None]:
        pipe = r.pipeline(transaction=False)
        for task_id in self.task_ids:
            pipe.hget(f"{P}task:{task_id}", "status")
        return dict(zip(self.task_ids, pipe.execute(), strict=True))

    def may_kill(self) -> bool:
        """One kill at a time, once the previous killed job has recovered and every worker is up."""
        return (
            len(self.kills) < self.cfg.kills
            and all(k.recovered_s is not None for k in self.kills)
            and len(self.workers) >= self.cfg.workers
        )

    def step(self, r: redis.Redis) -> bool:
        """One round of the chaos loop; True once everything is done."""
        self.watch_recoveries(r)
        if self.may_kill():
            self.kill_one(r)
        elif len(self.kills) >= self.cfg.kills and not self.redis_down_s and self.cfg.redis_restart:
            self.redis_down_s = self.redis_server.restart(0.5)
        unfinished = [s for s in self.statuses(r).values() if s not in ("SUCCEEDED", "FAILED", "CANCELED")]
        restarted = bool(self.redis_down_s) or not self.cfg.redis_restart
        return not unfinished and restarted and all(k.recovered_s is not None for k in self.kills)

    def drive(self) -> float:
        """Kill workers mid-job (and restart Redis once) until every task is final; the seconds."""
        started = time.monotonic()
        while time.monotonic() < started + self.cfg.deadline_s:
            with self.redis() as r, contextlib.suppress(redis.ConnectionError):
                if self.step(r):
                    return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"chaos run unfinished after {self.cfg.deadline_s} s: {self.kills}")

    def result_objects(self, task_id: str) -> list[Path]:
        folder = self.api.data_dir / "objects" / "results" / task_id
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def report(self, seconds: float) -> str:
        rec = ", ".join(f"{k.recovered_s:.2f}s" for k in self.kills if k.recovered_s is not None)
        return (
            f"chaos: {len(self.task_ids)} jobs, {self.cfg.workers} workers x {self.cfg.slots} slots, "
            f"{len(self.kills)} SIGKILLs, recovery [{rec}] (bound {self.cfg.claim_timeout_s * 2:.1f}s), "
            f"redis down {self.redis_down_s:.2f}s, all final after {seconds:.1f}s"
        )


@contextlib.contextmanager
def chaos_stack(tmp: Path, cfg: ChaosConfig) -> Iterator[ChaosRun]:
    """Start Redis, the facade and `cfg.workers` workers; stop everything on exit."""
    server = RedisProcess(tmp / "redis")
    server.start()
    env = {
        "PADDOCK_QUEUE_URL": server.url,
        "PADDOCK_STORAGE_URL": f"file://{tmp / 'data'}",
        "PADDOCK_DATA_DIR": str(tmp / "data"),
        "PADDOCK_CLAIM_TIMEOUT_S": str(cfg.claim_timeout_s),
        "PADDOCK_MAX_ATTEMPTS": "10",  # a job may be hit by several kills: no poison here
        "PADDOCK_MAX_CONCURRENT_JOBS": str(cfg.slots),
        "PADDOCK_SHUTDOWN_GRACE_S": "2",
        "PADDOCK_METRICS_PORT": "0",
        "PADDOCK_MAX_QUEUE_DEPTH": "0",
        "PADDOCK_FAKE_STEPS": str(cfg.steps),
        "PADDOCK_FAKE_STEP_S": str(cfg.step_s),
        "OMP_NUM_THREADS": "1",
    }
    keys = [f"sk-chaos-{i}" for i in range(cfg.keys)]
    try:
        with paddock_process(tmp, command="api", env=env, keys=keys) as api:
            env["PADDOCK_API_KEYS"] = ",".join(keys)
            run = ChaosRun(cfg, tmp, server, api, env)
            try:
                for _ in range(cfg.workers):
                    run.start_worker()
                yield run
            finally:
                run.stop_all()
    finally:
        server.stop()
