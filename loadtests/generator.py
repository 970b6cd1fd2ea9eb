"""The load generator: open-model arrivals over DashScope's HTTP task protocol, one row per job.

Each job is a coroutine: sleep until its intended send time, create the task (`X-DashScope-Async:
enable`), poll `GET /api/v1/tasks/{id}` until a final state, download `video_url`. Jobs never wait
for each other, so the offered rate is what the schedule says even when the server falls behind.
Media are made (and videos uploaded through the temporary-upload flow, once per key) before the
clock starts. Stopping early (Ctrl-C, `max_duration_s`) keeps every row gathered so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from loadtests.arrivals import Arrival, Schedule, plan_arrivals
from loadtests.media import Medium, load_image, load_video
from loadtests.profile import JobClass, Profile
from loadtests.summary import JobRow, percentile
from loadtests.wire import (
    CREATE_PATH,
    POLICY_PATH,
    TASK_PATH,
    auth_headers,
    create_headers,
    is_final,
    parse_task_time,
    task_output,
)

MediaList = list[dict[str, str]]


@dataclass(frozen=True)
class LoadConfig:
    """One load-test run. `poll_interval_s` is a (low, high) range each wait is drawn from."""

    base_url: str
    api_keys: tuple[str, ...]
    profile: Profile
    schedule: Schedule
    jobs: int
    max_duration_s: float = 3600.0
    poll_interval_s: tuple[float, float] = (10.0, 15.0)
    seed: int = 0
    download: bool = True
    request_timeout_s: float = 120.0

    def arrivals(self) -> list[Arrival]:
        """The planned arrivals (the same ones the planner replays for this seed)."""
        return plan_arrivals(
            self.schedule,
            jobs=self.jobs,
            weights=self.profile.weights,
            seed=self.seed,
            max_duration_s=self.max_duration_s,
        )


class LoadRun:
    """Runs a `LoadConfig`; `rows` holds what is known of every job sent so far."""

    def __init__(self, config: LoadConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self.rows: dict[int, JobRow] = {}
        self._media: dict[tuple[int, int], MediaList] = {}
        self._video_urls: dict[int, str] = {}
        self._rng = random.Random(config.seed + 1)
        self._t0 = 0.0

    # -- media --------------------------------------------------------------------------------
    async def prepare_media(self) -> None:
        """Images become data URIs; videos are uploaded once per class and key (`oss://`)."""
        for c, job in enumerate(self.config.profile.jobs):
            images: MediaList = []
            if job.image is not None:
                images.append({"type": "first_frame", "url": load_image(job.image, seed=c).data_uri()})
            for r, ref in enumerate(job.references):
                images.append(
                    {"type": "reference_image", "url": load_image(ref, seed=100 * c + r).data_uri()}
                )
            video = load_video(job.video, job.video_seconds, seed=c) if job.video is not None else None
            for t, key in enumerate(self.config.api_keys):
                media = list(images)
                if video is not None:
                    media.insert(0, {"type": "video", "url": await self._upload(key, job, video)})
                self._media[(c, t)] = media

    async def _upload(self, key: str, job: JobClass, medium: Medium) -> str:
        """The temporary-upload flow (API.md §5): a policy, a signed multipart POST, `oss://`."""
        response = await self.client.get(
            self.config.base_url + POLICY_PATH,
            params={"action": "getPolicy", "model": job.model},
            headers=auth_headers(key),
        )
        response.raise_for_status()
        policy = response.json()["data"]
        object_key = f"{policy['upload_dir']}/input.mp4"
        form = {
            "OSSAccessKeyId": policy["oss_access_key_id"],
            "Signature": policy["signature"],
            "policy": policy["policy"],
            "key": object_key,
            "x-oss-object-acl": policy["x_oss_object_acl"],
            "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"],
            "success_action_status": "200",
            "x-oss-content-type": medium.content_type,
        }
        files = {"file": ("input.mp4", medium.data, medium.content_type)}
        uploaded = await self.client.post(policy["upload_host"], data=form, files=files)
        uploaded.raise_for_status()
        return f"oss://{object_key}"

    # -- jobs ---------------------------------------------------------------------------------
    async def run(
        self, stop: asyncio.Event | None = None, arrivals: list[Arrival] | None = None
    ) -> list[JobRow]:
        """Send every planned job (or `arrivals`) on time; return when all are final, at the time
        limit, or on `stop`. Rows of jobs not yet sent are left out."""
        arrivals = self.config.arrivals() if arrivals is None else arrivals
        stop = stop or asyncio.Event()
        self.rows = {}
        self._t0 = time.monotonic()
        tasks = [asyncio.create_task(self._job(a)) for a in arrivals]
        everything = asyncio.gather(*tasks, return_exceptions=True)
        stopped = asyncio.create_task(stop.wait())
        waiters: set[asyncio.Future[Any]] = {everything, stopped}
        await asyncio.wait(waiters, timeout=self.config.max_duration_s, return_when="FIRST_COMPLETED")
        stopped.cancel()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await everything
        return [self.rows[i] for i in sorted(self.rows)]

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    async def _job(self, arrival: Arrival) -> None:
        await asyncio.sleep(max(0.0, arrival.offset_s - self.elapsed()))
        tenant = arrival.index % len(self.config.api_keys)
        job = self.config.profile.jobs[arrival.job_class]
        row = JobRow(
            arrival.index, job.name, tenant, arrival.offset_s, send_delay_s=self.elapsed() - arrival.offset_s
        )
        self.rows[arrival.index] = row
        key = self.config.api_keys[tenant]
        media = self._media[(arrival.job_class, tenant)]
        try:
            await self._create(row, key, job.body(media, seed=arrival.index), oss=job.video is not None)
            while row.task_id and not is_final(row.status):
                await asyncio.sleep(self._rng.uniform(*self.config.poll_interval_s))
                await self._poll(row, key)
            if is_final(row.status):
                row.client_e2e_s = self.elapsed() - arrival.offset_s
            if row.succeeded and self.config.download:
                await self._download(row)
        except httpx.HTTPError as exc:
            row.code = row.code or type(exc).__name__
            if not is_final(row.status):
                row.status = "ERROR"

    async def _create(self, row: JobRow, key: str, body: str, *, oss: bool) -> None:
        response = await self.client.post(
            self.config.base_url + CREATE_PATH, content=body, headers=create_headers(key, oss_resolve=oss)
        )
        row.http_status = response.status_code
        payload = _json(response)
        if response.status_code != 200:
            row.status = "REJECTED"
            row.code = str(payload.get("code", "")) if isinstance(payload, dict) else ""
            return
        self._update(row, task_output(payload))

    async def _poll(self, row: JobRow, key: str) -> None:
        url = self.config.base_url + TASK_PATH.format(task_id=row.task_id)
        try:
            response = await self.client.get(url, headers=auth_headers(key))
        except httpx.TransportError:
            return  # a dropped poll is retried at the next interval, as a client would
        row.polls += 1
        if response.status_code == 200:
            self._update(row, task_output(_json(response)))

    def _update(self, row: JobRow, output: dict[str, Any]) -> None:
        row.task_id = str(output.get("task_id") or row.task_id)
        row.status = str(output.get("task_status") or row.status)
        row.code = str(output.get("code") or row.code)
        for name in ("submit_time", "scheduled_time", "end_time"):
            value = parse_task_time(output.get(name))
            if value is not None:
                setattr(row, name, value)
        if output.get("video_url"):
            self._video_urls[row.index] = str(output["video_url"])

    async def _download(self, row: JobRow) -> None:
        url = self._video_urls.get(row.index)
        if not url:
            return
        started = time.monotonic()
        size = 0
        async with self.client.stream("GET", url) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                size += len(chunk)
        row.video_bytes, row.download_s = size, time.monotonic() - started


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


class ProgressLine:
    """A live status line (rewritten in place on a terminal, one line every 10 s otherwise)."""

    def __init__(self, run: LoadRun, total: int, stream: TextIO = sys.stderr) -> None:
        self.run = run
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()

    def line(self) -> str:
        rows = list(self.run.rows.values())
        done = [r for r in rows if is_final(r.status) or r.status in ("REJECTED", "ERROR")]
        ok = [r.e2e_s for r in rows if r.succeeded and r.e2e_s is not None]
        waiting = sum(1 for r in rows if r.status == "PENDING")
        running = sum(1 for r in rows if r.status == "RUNNING")
        p50 = f"{percentile(ok, 0.5):.1f}s" if ok else "-"
        return (
            f"[{self.run.elapsed():7.1f}s] sent {len(rows)}/{self.total}  pending {waiting}  "
            f"running {running}  done {len(done)} (ok {len(ok)}, failed {len(done) - len(ok)})  e2e p50 {p50}"
        )

    async def show_forever(self) -> None:
        period = 1.0 if self.tty else 10.0
        while True:
            await asyncio.sleep(period)
            self.write()

    def write(self, final: bool = False) -> None:
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + self.line() + end)
        self.stream.flush()


async def run_load(
    config: LoadConfig, *, progress: Callable[[LoadRun], ProgressLine] | None = None
) -> list[JobRow]:
    """Prepare media, run the load, and return the rows; SIGINT stops it early, keeping the rows."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Loops without Unix signal support raise NotImplementedError, and a loop outside the main
    # thread RuntimeError; there Ctrl-C interrupts the run as usual instead of stopping it gently.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    try:
        async with httpx.AsyncClient(timeout=config.request_timeout_s, limits=limits) as client:
            run = LoadRun(config, client)
            await run.prepare_media()
            line = progress(run) if progress is not None else None
            shower = asyncio.create_task(line.show_forever()) if line is not None else None
            try:
                return await run.run(stop)
            finally:
                if shower is not None:
                    shower.cancel()
                if line is not None:
                    line.write(final=True)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
