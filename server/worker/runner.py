"""JobRunner: claim → load inputs → generate → upload → commit, for up to N jobs at once.

The model side sits behind `VideoGenerator` (`model.generator`), a narrow seam: the runner hands
it a `GenerationRequest` and gets a finished MP4 back; concurrent jobs meet in its engine, which
batches their denoising steps. Heartbeats run beside every job; a job past `task_timeout_s` is
stopped at the next step boundary and FAILED with `InternalError.Timeout`. No ray here: Ray
replicas wrap this same class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from model.registry import ModelSpec, TaskFamily
from model.request import EngineShutdown, GenerationRequest, GenerationResult
from server.jobs.base import Claim, TaskQueue
from server.jobs.job import JobSpec, TaskStatus
from server.logging import task_id_var
from server.metrics import MetricsRecorder
from server.storage.base import ObjectStore

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
CLAIM_WAIT_S = 2.0
BURST_CLAIM_WAIT_S = 0.1


class Generator(Protocol):
    """What the runner needs from the model side (`model.generator.VideoGenerator`)."""

    def warm_up(self) -> None: ...

    def close(self) -> None: ...

    def healthy(self) -> bool: ...

    def spec(self, model: str) -> ModelSpec: ...

    def models(self) -> list[str]: ...

    def generate(
        self, request: GenerationRequest, out_dir: Path, *, progress: Callable[[int, int], None] | None = None
    ) -> GenerationResult: ...


class JobTimeout(Exception):
    """Raised from the progress callback when a job passes its time limit."""


class JobHandedBack(Exception):
    """Raised from the progress callback once the job was handed back at shutdown."""


class JobRunner:
    """Runs jobs from `queue` until stopped."""

    def __init__(
        self,
        queue: TaskQueue,
        store: ObjectStore,
        generator: Generator,
        *,
        task_ttl_s: int,
        task_timeout_s: float,
        name: str | None = None,
        max_concurrent_jobs: int = 1,
        heartbeat_s: float = HEARTBEAT_S,
        shutdown_grace_s: float = 30.0,
        metrics: MetricsRecorder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.metrics = metrics
        self._clock = clock  # wall time, for the task time limit (tests move it)
        self.store = store
        self.generator = generator
        self.task_ttl_s = task_ttl_s
        self.task_timeout_s = task_timeout_s
        self.name = name or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.ready = False
        self._stopping = asyncio.Event()
        # Jobs in hand at once: the engine batches the denoising steps of concurrent jobs.
        self._slots = asyncio.Semaphore(max(1, max_concurrent_jobs))
        self._running: dict[asyncio.Task[None], Claim] = {}
        # Heartbeats must come several times per claim timeout (server/jobs/janitor.py).
        self.heartbeat_s = heartbeat_s
        self.shutdown_grace_s = shutdown_grace_s
        self._handed_back = False

    async def run(self, *, burst: bool = False) -> None:
        """Warm the models up, then claim and run jobs until `stop()`; the jobs in hand finish.

        `burst` (arq's mode, for tests and one-off drains): return once the queue has nothing
        left to claim and every job in hand has finished."""
        await asyncio.to_thread(self.generator.warm_up)
        self.ready = True
        self.metrics.worker_ready(True)
        announcer = asyncio.create_task(self._announce_forever())
        log.info("worker %s ready", self.name)
        wait_s = BURST_CLAIM_WAIT_S if burst else CLAIM_WAIT_S
        while await self._free_slot():
            claim = await self._claim_one(wait_s)
            if claim is None:
                self._slots.release()
                if burst and not self._running:
                    break
                continue
            task = asyncio.create_task(self._process_in_slot(claim))
            self._running[task] = claim
            task.add_done_callback(lambda done: self._running.pop(done, None))
        announcer.cancel()
        with contextlib.suppress(Exception):
            await self.queue.announce(self.name, [], 0)  # no longer serving anything
        await self._drain()
        await asyncio.to_thread(self.generator.close)
        self.metrics.worker_ready(False)

    async def _free_slot(self) -> bool:
        """Wait for a free job slot; False (holding none) once `stop()` is called. Waiting on the
        slot alone would miss a stop while every slot is busy, and with it the grace period."""
        if self._stopping.is_set():
            return False
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not acquire.done():
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
        if acquire.done() and not acquire.cancelled():
            if not self._stopping.is_set():
                return True
            self._slots.release()
        return False

    async def _claim_one(self, wait_s: float) -> Claim | None:
        try:
            return await self.queue.claim(self.name, wait_s)
        except Exception:
            log.exception("claim failed; retrying")
            await asyncio.sleep(1.0)
            return None

    async def _process_in_slot(self, claim: Claim) -> None:
        try:
            await self.process(claim)
        finally:
            self._slots.release()

    def stop(self) -> None:
        """Stop claiming; the jobs in hand get `shutdown_grace_s` to finish, then are handed back."""
        self._stopping.set()

    async def _drain(self) -> None:
        """Wait up to `shutdown_grace_s` for the jobs in hand; release the rest (fenced), so
        another worker takes them at once instead of after the claim timeout."""
        if not self._running:
            return
        _done, late = await asyncio.wait(set(self._running), timeout=self.shutdown_grace_s)
        self._handed_back = bool(late)  # generation threads stop at their next step boundary
        for task in late:
            claim = self._running.get(task)
            if claim is not None:
                try:
                    await self.queue.release(claim)
                    log.warning("job handed back at shutdown", extra={"task_id": claim.task_id})
                except Exception:
                    log.exception("hand-back failed; the claim times out instead")
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def process(self, claim: Claim) -> None:
        """Run one claimed job to a final, fenced commit."""
        task_id = claim.task_id
        task_token = task_id_var.set(task_id)  # every log line of this job, threads included
        self.metrics.observe_claimed(claim.record)
        log.info("job started", extra={"task_id": task_id, "attempt": claim.attempt})
        heartbeat = asyncio.create_task(self._heartbeat(claim))
        try:
            with self.metrics.job_running():
                await self._run_job(claim)
        except EngineShutdown:
            # Never admitted: nothing ran, so another worker takes it at once.
            await self.queue.release(claim)
            log.info("job handed back: the engine is stopping", extra={"task_id": task_id})
        except JobTimeout:
            await self._fail(claim, code="InternalError.Timeout", message="The task exceeded its time limit.")
            log.warning("job timed out", extra={"task_id": task_id})
        except Exception as exc:
            log.exception("job failed", extra={"task_id": task_id})
            await self._fail(
                claim, code="InternalError.Algo", message=f"Generation failed: {type(exc).__name__}"
            )
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            task_id_var.reset(task_token)

    async def _fail(self, claim: Claim, *, code: str, message: str) -> None:
        """FAILED (fenced); counted only when this attempt's commit won."""
        if await self.queue.fail(claim, code=code, message=message):
            self.metrics.observe_job_finished(claim.record, TaskStatus.FAILED, code=code)

    async def _run_job(self, claim: Claim) -> None:
        record = claim.record
        spec = record.spec
        # 1. Inputs from the object store (the facade validated and stored them).
        request = await asyncio.to_thread(self._request_for, record.task_id, spec)
        # 2. Generate off the event loop, reporting progress at step boundaries.
        progress = self._progress_reporter(claim, deadline=record.submit_time + self.task_timeout_s)
        with tempfile.TemporaryDirectory(prefix="paddock-") as tmp:
            result = await asyncio.to_thread(self.generator.generate, request, Path(tmp), progress=progress)
            # 3. Upload under a key deterministic per task and attempt.
            key = f"results/{record.task_id}/{claim.attempt}.mp4"
            expires_at = record.submit_time + self.task_ttl_s
            nbytes, upload_started = result.path.stat().st_size, time.perf_counter()
            await asyncio.to_thread(self.store.put_file, key, result.path, "video/mp4", expires_at)
        self.metrics.observe_upload(nbytes)
        timings = {**result.timings, "upload_s": time.perf_counter() - upload_started}
        devices = len(self.generator.spec(spec.model).devices)
        self.metrics.observe_phases(spec.model, timings, devices=devices)
        # 4. Commit (fenced) and acknowledge.
        committed = await self.queue.complete(claim, result_key=key, orig_prompt=record.orig_prompt or "")
        if committed:
            self.metrics.observe_job_finished(record, TaskStatus.SUCCEEDED)
        else:
            await self._discard_result(record.task_id, key)
        log.info(
            "job finished" if committed else "job result discarded: claim lost",
            extra={"task_id": record.task_id, "seconds": round(sum(result.timings.values()), 3)},
        )

    async def _discard_result(self, task_id: str, key: str) -> None:
        """The fence refused this attempt's commit: delete its upload, so a task keeps exactly one
        result object. Kept when the record points at it (a retried commit had gone through)."""
        try:
            current = await self.queue.get(task_id)
            if current is None or current.result_key != key:
                await asyncio.to_thread(self.store.delete, key)
        except Exception:
            log.exception("could not discard a stale result", extra={"task_id": task_id})

    def _request_for(self, task_id: str, spec: JobSpec) -> GenerationRequest:
        blobs = {m.key: self.store.get_bytes(m.key) for m in spec.media}
        first = next((blobs[m.key] for m in spec.media if m.type == "first_frame"), None)
        video = next((blobs[m.key] for m in spec.media if m.type == "video"), None)
        references = tuple(blobs[m.key] for m in spec.media if m.type == "reference_image")
        return GenerationRequest(
            task_id=task_id,
            model=spec.model,
            family=TaskFamily(spec.family),
            prompt=spec.prompt,
            width=spec.width,
            height=spec.height,
            duration_s=spec.duration_s,
            seed=spec.seed,
            watermark=spec.watermark,
            first_frame=first,
            reference_images=references,
            video=video,
            keep_source_audio=spec.audio_setting == "origin",
        )

    def _progress_reporter(self, claim: Claim, *, deadline: float) -> Callable[[int, int], None]:
        loop = asyncio.get_running_loop()

        def report(step: int, total: int) -> None:
            # Runs on the generation thread, at a step boundary.
            if self._clock() > deadline:
                raise JobTimeout
            if self._handed_back:
                raise JobHandedBack
            asyncio.run_coroutine_threadsafe(self.queue.progress(claim, step, total), loop)

        return report

    async def _announce_forever(self) -> None:
        """Tell the facade which models this worker serves (`PADDOCK_REQUIRE_LIVE_WORKER`)."""
        models = self.generator.models()
        while True:
            try:
                await self.queue.announce(self.name, models, ttl_s=3 * self.heartbeat_s)
            except Exception:
                log.exception("announcing the served models failed; retrying")
            await asyncio.sleep(self.heartbeat_s)

    async def _heartbeat(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                if not await self.queue.heartbeat(claim):
                    log.warning("claim lost", extra={"task_id": claim.task_id})
            except Exception:
                log.exception("heartbeat failed", extra={"task_id": claim.task_id})
