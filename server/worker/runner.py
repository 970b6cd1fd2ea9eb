"""JobRunner: claim → load inputs → generate → upload → commit, one job at a time.

The model side sits behind `VideoGenerator` (`model.generator`), a narrow seam: the runner hands
it a `GenerationRequest` and gets a finished MP4 back. Heartbeats run beside every job; a job
past `task_timeout_s` is stopped at the next step boundary and FAILED with
`InternalError.Timeout`. No ray here: Ray replicas wrap this same class.
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

from model.registry import TaskFamily
from model.request import GenerationRequest, GenerationResult
from server.jobs.base import Claim, TaskQueue
from server.jobs.job import JobSpec
from server.storage.base import ObjectStore

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
CLAIM_WAIT_S = 2.0


class Generator(Protocol):
    """What the runner needs from the model side (`model.generator.VideoGenerator`)."""

    def warm_up(self) -> None: ...

    def generate(
        self, request: GenerationRequest, out_dir: Path, *, progress: Callable[[int, int], None] | None = None
    ) -> GenerationResult: ...


class JobTimeout(Exception):
    """Raised from the progress callback when a job passes its time limit."""


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
    ) -> None:
        self.queue = queue
        self.store = store
        self.generator = generator
        self.task_ttl_s = task_ttl_s
        self.task_timeout_s = task_timeout_s
        self.name = name or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.ready = False
        self._stopping = asyncio.Event()
        # Jobs in hand at once: the engine batches the denoising steps of concurrent jobs.
        self._slots = asyncio.Semaphore(max(1, max_concurrent_jobs))
        self._running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Warm the models up, then claim and run jobs until `stop()`; the jobs in hand finish."""
        await asyncio.to_thread(self.generator.warm_up)
        self.ready = True
        log.info("worker %s ready", self.name)
        while not self._stopping.is_set():
            await self._slots.acquire()
            claim = await self._claim_one()
            if claim is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._process_in_slot(claim))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _claim_one(self) -> Claim | None:
        try:
            return await self.queue.claim(self.name, CLAIM_WAIT_S)
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
        """Stop claiming; the job in hand finishes."""
        self._stopping.set()

    async def process(self, claim: Claim) -> None:
        """Run one claimed job to a final, fenced commit."""
        task_id = claim.task_id
        log.info("job started", extra={"task_id": task_id, "attempt": claim.attempt})
        heartbeat = asyncio.create_task(self._heartbeat(claim))
        try:
            await self._run_job(claim)
        except JobTimeout:
            await self.queue.fail(
                claim, code="InternalError.Timeout", message="The task exceeded its time limit."
            )
            log.warning("job timed out", extra={"task_id": task_id})
        except Exception as exc:
            log.exception("job failed", extra={"task_id": task_id})
            await self.queue.fail(
                claim, code="InternalError.Algo", message=f"Generation failed: {type(exc).__name__}"
            )
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

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
            await asyncio.to_thread(self.store.put_file, key, result.path, "video/mp4", expires_at)
        # 4. Commit (fenced) and acknowledge.
        committed = await self.queue.complete(
            claim, result_key=key, usage=spec.usage(), orig_prompt=record.orig_prompt or ""
        )
        log.info(
            "job finished" if committed else "job result discarded: claim lost",
            extra={"task_id": record.task_id, "seconds": round(sum(result.timings.values()), 3)},
        )

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
            if time.time() > deadline:
                raise JobTimeout
            asyncio.run_coroutine_threadsafe(self.queue.progress(claim, step, total), loop)

        return report

    async def _heartbeat(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                if not await self.queue.heartbeat(claim):
                    log.warning("claim lost", extra={"task_id": claim.task_id})
            except Exception:
                log.exception("heartbeat failed", extra={"task_id": claim.task_id})
