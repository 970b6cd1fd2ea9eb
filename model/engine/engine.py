"""Engine: one denoising loop that batches the steps of every running job.

The loop runs on its own thread and owns every transformer forward:

1. At each step boundary, admit waiting jobs (up to `max_running_jobs`) and encode each once
   (`Backend.prepare`: text, image, initial noise).
2. Group running jobs by their backend's compatibility key, cut groups by the token budget
   (`StepBatcher`), and run one forward per batch, guided and unguided halves together.
3. Advance each job's own sampler, report progress; a progress callback that raises (a time
   limit, a cancel) fails that job alone.
4. Hand finished jobs to the decode thread (VAE decode, batched by latent shape), so the
   transformer never waits for it.

`shutdown()` stops admitting, fails jobs not yet admitted with `EngineShutdown` (the caller
hands them back to the queue) and lets running ones finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from model.backends.base import Backend
from model.engine.batcher import StepBatcher
from model.request import EngineShutdown
from model.step import JobState, NativeClip, NativeJob

log = logging.getLogger(__name__)

# (backend name, batch size, seconds) after every batched forward.
StepObserver = Callable[[str, int, float], None]

__all__ = ["Engine", "StepObserver"]


@dataclass
class _Ticket:
    backend: Backend[Any]
    job: NativeJob
    future: Future[NativeClip] = field(default_factory=Future)
    state: JobState[Any] | None = None
    admitted_at: float = 0.0

    @property
    def live(self) -> JobState[Any]:
        assert self.state is not None, "ticket used before admission"
        return self.state


class Engine:
    """The step-batching loop. Thread-safe `submit`; one loop thread, one decode thread."""

    def __init__(self, *, max_running_jobs: int = 16, observer: StepObserver | None = None) -> None:
        self.max_running_jobs = max(1, max_running_jobs)
        self._observer = observer
        self._waiting: deque[_Ticket] = deque()
        self._running: list[_Ticket] = []
        self._cond = threading.Condition()
        self._admitting = True
        self._stopping = False
        self._batcher: StepBatcher[_Ticket] = StepBatcher(
            key=lambda t: t.backend.batch_key(t.live), cost=lambda t: t.live.cost
        )
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paddock-decode")
        self._thread = threading.Thread(target=self._loop, name="paddock-engine", daemon=True)
        self._thread.start()

    # -- public ---------------------------------------------------------------------------------

    def submit(self, backend: Backend[Any], job: NativeJob) -> Future[NativeClip]:
        """Queue `job` on `backend`; the future resolves to its native clip."""
        ticket = _Ticket(backend, job)
        with self._cond:
            if not self._admitting:
                raise EngineShutdown("the engine is shutting down")
            self._waiting.append(ticket)
            self._cond.notify()
        return ticket.future

    def run(self, backend: Backend[Any], job: NativeJob) -> NativeClip:
        """Submit and wait."""
        return self.submit(backend, job).result()

    @property
    def load(self) -> tuple[int, int]:
        """(running, waiting) job counts."""
        with self._cond:
            return len(self._running), len(self._waiting)

    def shutdown(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Stop admitting; fail not-yet-admitted jobs with `EngineShutdown`; finish running ones."""
        with self._cond:
            self._admitting = False
            self._stopping = True
            waiting, self._waiting = list(self._waiting), deque()
            self._cond.notify_all()
        for ticket in waiting:
            ticket.future.set_exception(EngineShutdown("the engine stopped before the job was admitted"))
        if wait:
            self._thread.join(timeout)
            self._decoder.shutdown(wait=True)

    # -- loop -----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._running and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._running and not self._waiting:
                    return
                admitted = self._take_waiting()
            for ticket in admitted:
                self._admit(ticket)
            if self._running:
                self._step()
                self._retire_finished()

    def _take_waiting(self) -> list[_Ticket]:
        free = self.max_running_jobs - len(self._running)
        taken = []
        while self._waiting and free > 0:
            taken.append(self._waiting.popleft())
            free -= 1
        return taken

    def _admit(self, ticket: _Ticket) -> None:
        if not ticket.future.set_running_or_notify_cancel():
            return
        try:
            ticket.state = ticket.backend.prepare(ticket.job)
        except Exception as exc:
            ticket.future.set_exception(exc)
            return
        ticket.admitted_at = time.perf_counter()
        self._running.append(ticket)

    def _step(self) -> None:
        """Advance every running job by one denoising step."""
        batches = self._batcher.plan(self._running, budget=lambda t: t.backend.max_batch_tokens)
        for batch in batches:
            states = [t.live for t in batch]
            started = time.perf_counter()
            try:
                predictions = batch[0].backend.forward(states)
            except Exception as exc:
                log.exception("batched forward failed; failing its %d jobs", len(batch))
                for ticket in batch:
                    self._fail(ticket, exc)
                continue
            if self._observer is not None:
                self._observer(batch[0].backend.name, len(batch), time.perf_counter() - started)
            for ticket, prediction in zip(batch, predictions, strict=True):
                self._advance(ticket, prediction)

    def _advance(self, ticket: _Ticket, prediction: torch.Tensor) -> None:
        state = ticket.live
        try:
            with torch.inference_mode():
                state.latents = state.scheduler.step(
                    prediction, state.timestep, state.latents, return_dict=False
                )[0]
            state.step += 1
            if ticket.job.progress is not None:
                ticket.job.progress(state.step, state.total_steps)
        except Exception as exc:  # a time limit or cancel raised from progress, or a sampler error
            self._fail(ticket, exc)

    def _fail(self, ticket: _Ticket, exc: BaseException) -> None:
        if ticket in self._running:
            self._running.remove(ticket)
        self._release(ticket)
        if not ticket.future.done():
            ticket.future.set_exception(exc)

    def _release(self, ticket: _Ticket) -> None:
        if ticket.state is not None:
            ticket.backend.release(ticket.state)

    def _retire_finished(self) -> None:
        finished = [t for t in self._running if t.live.done]
        if not finished:
            return
        self._running = [t for t in self._running if not t.live.done]
        groups: dict[tuple[str, tuple[int, ...]], list[_Ticket]] = {}
        for ticket in finished:
            self._release(ticket)
            key = (ticket.live.backend_id, tuple(ticket.live.latents.shape))
            groups.setdefault(key, []).append(ticket)
        for group in groups.values():
            self._decoder.submit(self._decode, group)

    @staticmethod
    def _decode(group: list[_Ticket]) -> None:
        try:
            clips = group[0].backend.decode([t.live for t in group])
        except Exception as exc:
            for ticket in group:
                ticket.future.set_exception(exc)
            return
        for ticket, clip in zip(group, clips, strict=True):
            ticket.future.set_result(clip)
