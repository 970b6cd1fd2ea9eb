"""Open-model arrival schedules: when each job is meant to be sent, decided before the run.

Arrivals do not wait for the server (an open model): the generator sends job i at its intended
offset whatever happened to job i-1, and times it from that offset, so a slow server cannot hide
its queue (coordinated omission). The planner's simulation draws from the same functions with the
same seed, so a prediction can replay exactly the arrivals a load test offered.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SCHEDULES = ("poisson", "step", "ramp")


@dataclass(frozen=True)
class Arrival:
    """Job `index` of class `job_class` (an index into the profile's jobs), due at `offset_s`."""

    index: int
    offset_s: float
    job_class: int


@dataclass(frozen=True)
class Schedule:
    """An arrival-rate curve. `poisson`: `rate` throughout. `step`: Poisson at each of `rates` for
    `step_s` seconds in turn, then the last one. `ramp`: from `ramp_from` up to `rate` linearly over
    `ramp_s` seconds, then `rate`."""

    kind: str = "poisson"
    rate: float = 1.0
    rates: tuple[float, ...] = ()
    step_s: float = 60.0
    ramp_from: float = 0.0
    ramp_s: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.kind!r}")
        if self.kind == "step" and not self.rates:
            raise ValueError("a step schedule needs its rates (--rates 0.1,0.2,...)")
        if self.kind == "step" and self.step_s <= 0:
            raise ValueError("--step-s must be positive")
        if self.kind == "ramp" and self.ramp_s <= 0:
            raise ValueError("--ramp-s must be positive")
        if min((self.rate, self.ramp_from, *self.rates)) < 0 or self.peak <= 0:
            raise ValueError("arrival rates must be non-negative, and one of them positive")

    @property
    def peak(self) -> float:
        """The highest rate the curve reaches (the thinning envelope)."""
        if self.kind == "step":
            return max(self.rates)
        return max(self.rate, self.ramp_from)

    def rate_at(self, t: float) -> float:
        """Jobs per second intended at `t` seconds into the run."""
        if self.kind == "step":
            return self.rates[min(int(t // self.step_s), len(self.rates) - 1)]
        if self.kind == "ramp" and t < self.ramp_s:
            return self.ramp_from + (self.rate - self.ramp_from) * t / self.ramp_s
        return self.rate

    def mean_rate(self, until_s: float) -> float:
        """The average intended rate over [0, until_s] (what a summary reports as offered)."""
        if self.kind == "poisson" or until_s <= 0:
            return self.rate_at(0.0)
        slices = 1000
        return sum(self.rate_at((i + 0.5) * until_s / slices) for i in range(slices)) / slices


def plan_arrivals(
    schedule: Schedule,
    *,
    jobs: int,
    weights: Sequence[float],
    seed: int = 0,
    max_duration_s: float = math.inf,
) -> list[Arrival]:
    """Up to `jobs` arrivals due before `max_duration_s`, with classes drawn by `weights`.

    A non-homogeneous Poisson process by thinning (Lewis–Shedler): candidates at the peak rate,
    each kept with probability rate(t) / peak. Deterministic for a seed.
    """
    if jobs < 0 or not weights or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("need jobs >= 0 and non-negative class weights with a positive sum")
    rng = random.Random(seed)
    pick = _weighted_picker(weights, rng)
    arrivals: list[Arrival] = []
    t = 0.0
    while len(arrivals) < jobs:
        t += rng.expovariate(schedule.peak)
        if t > max_duration_s:
            break
        if rng.random() * schedule.peak <= schedule.rate_at(t):
            arrivals.append(Arrival(len(arrivals), t, pick()))
    return arrivals


def _weighted_picker(weights: Sequence[float], rng: random.Random) -> Callable[[], int]:
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)

    def pick() -> int:
        x = rng.random() * total
        return next(i for i, edge in enumerate(cumulative) if x < edge or i == len(cumulative) - 1)

    return pick
