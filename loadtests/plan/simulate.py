"""A discrete-event simulation (SimPy) of paddock serving a job mix: its actual policy, step by step.

What it mirrors, and where that lives in paddock:
- claims: one queue over all workers, round robin over tenants with waiting jobs, each tenant's
  jobs oldest first; a tenant new to the rotation goes just before the most recently served one
  (`server/jobs/memory.py`, `redis_scripts.py`);
- slots: a worker holds at most `slots` jobs (`max_concurrent_jobs`) from claim to commit, and
  claims again as soon as one frees (`server/worker/runner.py`);
- the engine: one loop per worker admits waiting jobs at step boundaries, groups running jobs by
  batch key, cut by the batch cap, and runs one forward per group; k jobs in a forward take
  t(k) and each advances one step; finished jobs go to the decode thread, which decodes one group
  at a time (`model/engine/engine.py`, `batcher.py`);
- the rest of a job (input decode before, resample, watermark, encode and upload after) runs in
  the job's own thread (`model/generator.py`), on the same cores as everything else.

Cores are `SharedProcessor`s: activities do not queue for them, they slow each other down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from loadtests.arrivals import Arrival
from loadtests.plan.calibration import ClassCalibration, Variant
from loadtests.plan.processor import SharedProcessor
from loadtests.summary import JobRow

# A SimPy process: a generator that yields events and is resumed with their values.
Process = Generator[simpy.Event, Any, None]

ENGINE_MAX_RUNNING = 16  # VideoGenerator's engine admits max(16, slots) jobs (server/cli.py)


@dataclass(frozen=True)
class Fleet:
    """`workers` identical workers of `variant`, each holding up to `slots` jobs."""

    variant: Variant
    workers: int
    slots: int
    tenants: int = 1

    @property
    def gpus(self) -> int:
        return self.workers * self.variant.gpus_per_worker


@dataclass(eq=False)
class _Job:
    row: JobRow
    work: ClassCalibration
    group: str
    steps_left: int
    engine_done: simpy.Event


class _TenantQueue:
    """Waiting jobs: per-tenant FIFOs served round robin, least recently served tenant first."""

    def __init__(self) -> None:
        self._pending: dict[int, deque[_Job]] = {}
        self._rotation: dict[int, float] = {}
        self._seq = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._pending.values())

    def push(self, job: _Job) -> None:
        tenant = job.row.tenant
        self._pending.setdefault(tenant, deque()).append(job)
        self._rotation.setdefault(tenant, self._seq - 0.5)

    def pop(self) -> _Job | None:
        if not self._rotation:
            return None
        tenant = min(self._rotation, key=lambda t: (self._rotation[t], t))
        waiting = self._pending[tenant]
        job = waiting.popleft()
        self._seq += 1
        self._rotation[tenant] = self._seq
        if not waiting:
            del self._rotation[tenant], self._pending[tenant]
        return job


@dataclass(eq=False)
class _Worker:
    host: SharedProcessor
    device: SharedProcessor
    free: int
    decode_queue: simpy.Store
    waiting: list[_Job] = field(default_factory=list)
    running: list[_Job] = field(default_factory=list)
    wake: simpy.Event | None = None


class Simulation:
    """One run of `arrivals` (job classes named by `class_names`) on `fleet`."""

    def __init__(self, fleet: Fleet, class_names: Sequence[str], arrivals: Sequence[Arrival]) -> None:
        missing = fleet.variant.covers(class_names)
        if missing:
            raise ValueError(f"variant {fleet.variant.name!r} has no calibration for {', '.join(missing)}")
        self.fleet = fleet
        self.env = simpy.Environment()
        self.queue = _TenantQueue()
        self.workers = [self._worker() for _ in range(fleet.workers)]
        self.jobs: list[_Job] = []
        for arrival in arrivals:
            name = class_names[arrival.job_class]
            work = fleet.variant.classes[name]
            row = JobRow(arrival.index, name, arrival.index % fleet.tenants, arrival.offset_s)
            done = self.env.event()
            self.jobs.append(_Job(row, work, work.batch_group or name, work.steps, done))

    def _worker(self) -> _Worker:
        variant = self.fleet.variant
        host = SharedProcessor(self.env, variant.host_parallelism)
        device = host if variant.device_on_host else SharedProcessor(self.env, 1.0)
        worker = _Worker(host, device, self.fleet.slots, simpy.Store(self.env))
        self.env.process(self._engine(worker))
        self.env.process(self._decoder(worker))
        return worker

    def run(self) -> list[JobRow]:
        """Every job's row, with submit, scheduled and end times in seconds from the start."""
        self.env.process(self._arrivals())
        self.env.run()
        return [job.row for job in self.jobs]

    # -- the queue and the workers' slots -------------------------------------------------------
    def _arrivals(self) -> Process:
        for job in self.jobs:
            delay = job.row.intended_offset_s - self.env.now
            if delay > 0:
                yield self.env.timeout(delay)
            job.row.submit_time = self.env.now
            job.row.status = "PENDING"
            self.queue.push(job)
            self._dispatch()

    def _dispatch(self) -> None:
        while len(self.queue):
            worker = max(self.workers, key=lambda w: w.free)
            if worker.free <= 0:
                return
            job = self.queue.pop()
            assert job is not None
            worker.free -= 1
            self.env.process(self._run_job(worker, job))

    def _run_job(self, worker: _Worker, job: _Job) -> Process:
        job.row.scheduled_time = self.env.now
        job.row.status = "RUNNING"
        yield worker.host.run(job.work.pre_s)
        worker.waiting.append(job)
        if worker.wake is not None and not worker.wake.triggered:
            worker.wake.succeed()
        yield job.engine_done
        yield worker.host.run(job.work.post_s)
        if job.work.misc_s > 0:
            yield self.env.timeout(job.work.misc_s)
        job.row.end_time = self.env.now
        job.row.status = "SUCCEEDED"
        worker.free += 1
        self._dispatch()

    # -- the engine: its loop thread and its decode thread --------------------------------------
    def _engine(self, worker: _Worker) -> Process:
        cap = max(ENGINE_MAX_RUNNING, self.fleet.slots)
        while True:
            if not worker.waiting and not worker.running:
                worker.wake = self.env.event()
                yield worker.wake
            room = cap - len(worker.running)
            worker.running.extend(worker.waiting[:room])
            del worker.waiting[:room]
            for batch in self._batches([j for j in worker.running if j.steps_left > 0]):
                yield worker.device.run(batch[0].work.step_time(len(batch)))
                for job in batch:
                    job.steps_left -= 1
            finished = [j for j in worker.running if j.steps_left <= 0]
            worker.running = [j for j in worker.running if j.steps_left > 0]
            groups: dict[str, list[_Job]] = {}
            for job in finished:
                groups.setdefault(job.group, []).append(job)
            for group in groups.values():
                worker.decode_queue.put(group)

    @staticmethod
    def _batches(running: Sequence[_Job]) -> list[list[_Job]]:
        """StepBatcher.plan: group by key in arrival order, cut each group at the batch cap."""
        groups: dict[str, list[_Job]] = {}
        for job in running:
            groups.setdefault(job.group, []).append(job)
        batches: list[list[_Job]] = []
        for members in groups.values():
            cap = members[0].work.max_batch or len(members)
            batches.extend(members[i : i + cap] for i in range(0, len(members), cap))
        return batches

    def _decoder(self, worker: _Worker) -> Process:
        while True:
            group = yield worker.decode_queue.get()
            yield worker.device.run(sum(job.work.vae_s for job in group))
            for job in group:
                job.engine_done.succeed()


def simulate(fleet: Fleet, class_names: Sequence[str], arrivals: Sequence[Arrival]) -> list[JobRow]:
    """Run the simulation once; rows carry times in seconds from the first arrival's clock."""
    return Simulation(fleet, class_names, arrivals).run()
