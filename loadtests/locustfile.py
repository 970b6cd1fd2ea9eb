"""Locust: submit DashScope video jobs at a constant rate, poll each to its end, time the whole job.

    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \
        -u 4 -r 4 --run-time 5m --jobs-per-min 2 --max-jobs 10

Every poll is one `GET /tasks/[id]` row; each finished job is one `JOB video_e2e` sample (plus
`JOB queue_wait` and `JOB service` from the task's own times). Hosts other than loopback are
refused unless `--allow-remote-host` is given: only load your own test servers. See README.md.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment
from locust.exception import StopUser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtests.videojob import (
    CREATE_PATH,
    TASK_NAME,
    TASK_PATH,
    JobParams,
    create_body,
    create_headers,
    is_final,
    is_loopback_host,
    phase_times,
    poll_headers,
    task_output,
)

log = logging.getLogger("paddock.loadtest")
_DEFAULT_KEY_FILE = Path("paddock-data/api_key")


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    # On the parser itself: argument groups reject Locust's extra keywords (is_secret).
    group = parser
    group.add_argument(
        "--api-key",
        env_var="PADDOCK_API_KEY",
        default="",
        is_secret=True,
        help="API key (else DASHSCOPE_API_KEY, else paddock-data/api_key)",
    )
    group.add_argument("--model", env_var="PADDOCK_LOAD_MODEL", default=JobParams.model)
    group.add_argument("--resolution", env_var="PADDOCK_LOAD_RESOLUTION", default=JobParams.resolution)
    group.add_argument("--duration", env_var="PADDOCK_LOAD_DURATION", type=int, default=JobParams.duration)
    group.add_argument(
        "--jobs-per-min",
        env_var="PADDOCK_LOAD_JOBS_PER_MIN",
        type=float,
        default=2.0,
        help="offered load λ over all users (each user paces λ/users)",
    )
    group.add_argument(
        "--max-jobs",
        env_var="PADDOCK_LOAD_MAX_JOBS",
        type=int,
        default=20,
        help="stop submitting after this many jobs (0 = no count bound)",
    )
    group.add_argument(
        "--max-run-time",
        env_var="PADDOCK_LOAD_MAX_RUN_TIME",
        type=float,
        default=900.0,
        help="hard stop in seconds even without --run-time",
    )
    group.add_argument("--poll-interval", env_var="PADDOCK_LOAD_POLL_S", type=float, default=2.0)
    group.add_argument("--job-timeout", env_var="PADDOCK_LOAD_JOB_TIMEOUT_S", type=float, default=1800.0)
    group.add_argument(
        "--allow-remote-host",
        action="store_true",
        default=False,
        help="allow a host that is not loopback (your own test hosts only)",
    )


def _api_key(options: Any) -> str:
    key = options.api_key or os.environ.get("DASHSCOPE_API_KEY", "")
    if not key and _DEFAULT_KEY_FILE.is_file():
        key = _DEFAULT_KEY_FILE.read_text().strip()
    return key


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    problem = _preflight(environment.host or "", options)
    if problem:
        log.error("%s", problem)
        environment.process_exit_code = 2
        # Deferred: quitting from inside test_start would race the runner's own start-up.
        gevent.spawn_later(0, _quit, environment)
        return
    if options.max_run_time and options.max_run_time > 0:
        gevent.spawn_later(options.max_run_time, _quit, environment)


def _preflight(host: str, options: Any) -> str | None:
    """Why the run must not start, or None."""
    if not options.allow_remote_host and not is_loopback_host(host):
        return f"refusing to load {host!r}: not loopback (pass --allow-remote-host for your own hosts)"
    if not _api_key(options):
        return "no API key: pass --api-key, or set PADDOCK_API_KEY or DASHSCOPE_API_KEY"
    return None


def _quit(environment: Environment) -> None:
    if environment.runner is not None:
        environment.runner.quit()


class VideoJobUser(FastHttpUser):
    """One simulated client: submit a job, poll it to a final state, repeat at its share of λ."""

    # Shared by every user of this process: --max-jobs bounds the jobs submitted overall.
    _counter = itertools.count()
    _finished = itertools.count(1)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.api_key = _api_key(options)  # checked once in _preflight
        self.params = JobParams(model=options.model, resolution=options.resolution, duration=options.duration)
        users = max(1, int(getattr(options, "num_users", 1) or 1))
        self._pace = constant_throughput(max(options.jobs_per_min, 1e-6) / 60.0 / users)

    def wait_time(self) -> float:
        return self._pace(self)

    @task
    def video_job(self) -> None:
        options = self.environment.parsed_options
        index = next(self._counter)
        if options.max_jobs and index >= options.max_jobs:
            raise StopUser()
        started = time.perf_counter()
        task_id, error = self._submit(index)
        output: dict[str, Any] = {}
        if task_id:
            output, error = self._poll(task_id, options.poll_interval, options.job_timeout)
        self._report(started, output, error)
        if options.max_jobs and next(self._finished) >= options.max_jobs:
            log.info("all %d jobs finished; stopping", options.max_jobs)
            gevent.spawn_later(0, _quit, self.environment)

    def _submit(self, index: int) -> tuple[str | None, Exception | None]:
        headers = create_headers(self.api_key)
        body = create_body(self.params, index)
        with self.client.post(
            CREATE_PATH, data=body, headers=headers, name="create", catch_response=True
        ) as r:
            output = task_output(r.json()) if r.status_code == 200 else {}
            if not output.get("task_id"):
                r.failure(f"create answered {r.status_code}: {r.text[:200]}")
                return None, RuntimeError(f"create failed with HTTP {r.status_code}")
        return str(output["task_id"]), None

    def _poll(self, task_id: str, interval: float, timeout: float) -> tuple[dict[str, Any], Exception | None]:
        deadline = time.monotonic() + timeout
        path = TASK_PATH.format(task_id=task_id)
        while time.monotonic() < deadline:
            with self.client.get(
                path, headers=poll_headers(self.api_key), name=TASK_NAME, catch_response=True
            ) as r:
                output = task_output(r.json()) if r.status_code == 200 else {}
                if r.status_code != 200:
                    r.failure(f"poll answered {r.status_code}")
            status = output.get("task_status")
            if is_final(status):
                error = None if status == "SUCCEEDED" else RuntimeError(f"{status}: {output.get('code', '')}")
                return output, error
            gevent.sleep(interval)
        return {}, TimeoutError(f"task {task_id} not final after {timeout:.0f}s")

    def _report(self, started: float, output: dict[str, Any], error: Exception | None) -> None:
        fire = self.environment.events.request.fire
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        fire(
            request_type="JOB",
            name="video_e2e",
            response_time=elapsed_ms,
            response_length=0,
            exception=error,
            context={},
        )
        if error is not None:
            return
        phases = phase_times(output)
        for name, seconds in (("queue_wait", phases.queue_wait_s), ("service", phases.service_s)):
            if seconds is not None:
                fire(
                    request_type="JOB",
                    name=name,
                    response_time=seconds * 1000.0,
                    response_length=0,
                    exception=None,
                    context={},
                )
