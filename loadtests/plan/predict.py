"""Predictions for one fleet at one arrival rate: the simulation for the numbers, the analytic
screen beside it. Every run starts empty and offers `jobs` jobs, like a load test, and is
summarised by the load test's own functions, so predicted and measured mean the same thing."""

from __future__ import annotations

import math
from typing import Any

from loadtests.arrivals import Arrival, Schedule, plan_arrivals
from loadtests.plan.analytic import screen
from loadtests.plan.simulate import Fleet, simulate
from loadtests.profile import Profile
from loadtests.summary import JobRow, is_saturated, stats

# A capacity run: this many jobs per slot of the fleet, all waiting at the start.
CAPACITY_JOBS_PER_SLOT = 12
CAPACITY_MIN_JOBS = 120


def capacity(fleet: Fleet, profile: Profile, seed: int = 0) -> float:
    """The most jobs per second `fleet` finishes on this mix, with a queue that never empties.

    By Little's law on the slots: while jobs wait, every slot is busy, so throughput is slots /
    mean service. Counting completions instead would be biased here: workers that start
    together finish together, and a window's edges cut those clumps."""
    slots = fleet.workers * fleet.slots
    jobs = max(CAPACITY_MIN_JOBS, CAPACITY_JOBS_PER_SLOT * slots)
    burst = [Arrival(a.index, 0.0, a.job_class) for a in _arrivals(profile, 1.0, jobs, seed)]
    rows = sorted(simulate(fleet, _names(profile), burst), key=lambda r: r.scheduled_time or 0.0)
    # Leave out the start (all slots filling at once) and the jobs that ran as the queue drained.
    busy = [r.service_s for r in rows[jobs // 10 : jobs - max(jobs // 10, slots)] if r.service_s is not None]
    return slots / (sum(busy) / len(busy)) if busy else 0.0


def _names(profile: Profile) -> list[str]:
    return [job.name for job in profile.jobs]


def _arrivals(profile: Profile, rate: float, jobs: int, seed: int) -> list[Arrival]:
    return plan_arrivals(Schedule(rate=rate), jobs=jobs, weights=profile.weights, seed=seed)


def _percentiles(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: values[k] for k in ("p50", "p95", "p99")}


def simulate_runs(
    fleet: Fleet, profile: Profile, rate: float, *, jobs: int, seeds: list[int]
) -> list[list[JobRow]]:
    """One simulated load test per seed (seed s offers exactly what `paddock loadtest --seed s`
    offers: the same arrival times and classes)."""
    return [simulate(fleet, _names(profile), _arrivals(profile, rate, jobs, seed)) for seed in seeds]


def predict(
    fleet: Fleet,
    profile: Profile,
    rate: float,
    *,
    jobs: int = 200,
    replications: int = 5,
    seed: int = 0,
    max_rate: float | None = None,
    warmup: int = 0,
) -> dict[str, Any]:
    """The prediction object of `paddock plan predict`. Percentiles pool `replications` runs of
    `jobs` jobs each. With `warmup`, each run first offers that many more jobs, left out of the
    percentiles: steady state, what production traffic sees, rather than a run from empty, what a
    load test sees."""
    max_rate = capacity(fleet, profile) if max_rate is None else max_rate
    seeds = [seed + i for i in range(replications)]
    runs = simulate_runs(fleet, profile, rate, jobs=jobs + warmup, seeds=seeds)
    done = [r for run in runs for r in run if r.succeeded and r.index >= warmup]
    flagged = sum(is_saturated(run) for run in runs)
    wait, e2e, service = (
        stats([v for v in (getattr(r, name) for r in done) if v is not None])
        for name in ("wait_s", "e2e_s", "service_s")
    )
    return {
        "rate_per_s": rate,
        "variant": fleet.variant.name,
        "workers": fleet.workers,
        "gpus": fleet.gpus,
        "slots": fleet.slots,
        "utilisation": rate / max_rate if max_rate > 0 else math.inf,
        "max_rate_per_s": max_rate,
        # Saturated: arrivals above what the fleet can finish. Short runs below capacity can still
        # show a growing backlog by chance; how many did is reported beside it.
        "saturated": rate >= max_rate,
        "runs_with_growing_backlog": flagged,
        "wait_s": _percentiles(wait),
        "service_s": _percentiles(service),
        "e2e_s": _percentiles(e2e),
        "jobs": jobs,
        "warmup_jobs": warmup,
        "replications": replications,
        "analytic": screen(fleet.variant, _names(profile), profile.weights, rate, fleet.workers, fleet.slots),
    }
