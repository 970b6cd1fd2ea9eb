"""Each measured job against the planner's model of a shared host, given the jobs that really ran
beside it.

A load test's latencies can miss a prediction for two reasons: the planner's model of how jobs slow
each other down is wrong, or the machine ran at another speed than at calibration. This check
tells the two apart from the load test's own rows. For each job it replays the model on the job's
real neighbours: the job needs its class's lone work, and while n jobs (it included) are in service
on the host, it advances at min(1, p / n) of full speed, p the calibrated host parallelism (the
rule of `processor.SharedProcessor`). Measured service over that model service is 1 when both the
model and the machine's speed hold. Jobs that had the host to themselves measure only the
machine's speed; jobs that shared it measure the model too. When both ratios agree, whatever the
predictions missed is the machine's, not the model's.

It applies where the planner puts every phase on the host's cores (`Variant.device_on_host`, the
CPU stacks `plan validate` starts); on a GPU the steps share the device instead. It counts a job as
one activity for its whole service, where the simulation runs a batch's steps as one: on the tiny
models the steps are a few percent of a job.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.plan.calibration import Variant
from loadtests.summary import JobRow

ALONE_SHARE = 0.02  # a job that shared the host for under 2 % of its service counts as alone

Interval = tuple[float, float]


@dataclass(frozen=True)
class ServiceCheck:
    """Median measured-over-model service of the jobs that ran alone and of those that shared the
    host (NaN where there were none), and how many jobs each median covers."""

    alone: float
    shared: float
    jobs_alone: int
    jobs_shared: int

    def describe(self) -> str:
        alone = f"alone x{self.alone:.2f} ({self.jobs_alone} jobs)"
        return f"{alone}, shared x{self.shared:.2f} ({self.jobs_shared} jobs)"


def model_service(work_s: float, start: float, neighbours: Sequence[Interval], parallelism: float) -> float:
    """Seconds from `start` until `work_s` of full-speed work is done, advancing at
    min(1, parallelism / n) while n jobs (this one and the `neighbours` in service) share the host."""
    left, t = work_s, start
    edges = sorted({edge for interval in neighbours for edge in interval if edge > start})
    for edge in [*edges, math.inf]:
        running = 1 + sum(1 for s, e in neighbours if s <= t < e)
        speed = min(1.0, parallelism / running)
        if (edge - t) * speed >= left:
            return t + left / speed - start
        left -= (edge - t) * speed
        t = edge
    raise AssertionError("unreachable: the last edge is infinite")


def service_check(rows: Sequence[JobRow], variant: Variant) -> ServiceCheck | None:
    """Every finished job of `rows` against `variant`'s model; None off the host (a GPU variant)
    or when no job finished."""
    if not variant.device_on_host:
        return None
    done = [
        (r.scheduled_time, r.end_time, variant.classes[r.job_class])
        for r in rows
        if r.succeeded
        and r.scheduled_time is not None
        and r.end_time is not None
        and r.job_class in variant.classes
    ]
    if not done:
        return None
    alone: list[float] = []
    shared: list[float] = []
    for i, (start, end, work) in enumerate(done):
        neighbours = [(s, e) for j, (s, e, _) in enumerate(done) if j != i and e > start]
        # The misc part is waiting (claim, commit) that uses no core: it is not shared.
        model = model_service(work.alone_s - work.misc_s, start, neighbours, variant.host_parallelism)
        ratio = (end - start) / (model + work.misc_s)
        overlap = sum(max(0.0, min(end, e) - max(start, s)) for s, e in neighbours)
        (alone if overlap < ALONE_SHARE * (end - start) else shared).append(ratio)
    return ServiceCheck(_median(alone), _median(shared), len(alone), len(shared))


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
