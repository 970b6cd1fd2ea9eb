"""`paddock plan recommend`: the cheapest fleet that meets an SLO at a rate, and why the next
cheaper one does not.

Candidates are what the calibration covers: each variant (GPUs per worker, step cache on or off)
x slots per worker (1, 2, 4, ... up to the calibrated stack's) x workers. For each variant and
slot count the simulation's capacity of one worker gives the first worker count that keeps up;
workers are then added until the SLO holds. Cost is GPU-hours: workers x GPUs per worker.
"""

from __future__ import annotations

import heapq
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests.plan.calibration import Calibration, FacadeCapacity, Variant
from loadtests.plan.predict import capacity, predict
from loadtests.plan.simulate import Fleet
from loadtests.profile import Profile

SLOT_CHOICES = (1, 2, 4, 8, 16)
EXTRA_WORKERS = 8  # workers added beyond the first that keeps up before a candidate is given up
JOBS_PER_SLOT = 10  # a simulated run offers at least this many jobs per slot of the fleet
FACADE_HEADROOM = 0.5  # keep each facade replica at most half busy
CURVE_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
_SLO_TERM = re.compile(r"\s*(p50|p95|p99)_(e2e|wait)\s*<=\s*([0-9.]+)\s*")


@dataclass(frozen=True)
class Slo:
    """Upper bounds on percentiles: `p95_e2e<=180`, several joined by commas."""

    limits: tuple[tuple[str, str, float], ...]

    @classmethod
    def parse(cls, text: str) -> Slo:
        limits = []
        for term in text.split(","):
            match = _SLO_TERM.fullmatch(term)
            if match is None:
                raise ValueError(
                    f"SLO term {term.strip()!r}: expected e.g. p95_e2e<=180 (p50/p95/p99, e2e/wait)"
                )
            limits.append((match[1], match[2], float(match[3])))
        return cls(tuple(limits))

    def __str__(self) -> str:
        return ", ".join(f"{q}_{m}<={v:g}" for q, m, v in self.limits)

    def failure(self, prediction: dict[str, Any]) -> str | None:
        """Why `prediction` misses the SLO, or None when it meets it."""
        if prediction["saturated"]:
            return (
                f"saturated: {prediction['rate_per_s']:.4g} jobs/s offered, capacity "
                f"{prediction['max_rate_per_s']:.4g} jobs/s"
            )
        for q, metric, limit in self.limits:
            value = prediction[f"{metric}_s"][q]
            if value is None or value > limit:
                return f"{q} {metric} {value:.1f} s > {limit:g} s"
        return None


@dataclass
class Candidate:
    """One fleet, its prediction at the planned rate, and its cost."""

    fleet: Fleet
    prediction: dict[str, Any]
    failure: str | None
    gpu_hour_cost: float

    @property
    def meets(self) -> bool:
        return self.failure is None

    @property
    def gpu_hours_per_day(self) -> float:
        return 24.0 * self.fleet.gpus

    @property
    def cost_per_day(self) -> float:
        return self.gpu_hours_per_day * self.gpu_hour_cost

    def cost_per_video(self, rate: float) -> float:
        return self.cost_per_day / (rate * 86_400) if rate > 0 else math.inf

    def label(self) -> str:
        v = self.fleet.variant
        cache = ", step cache" if v.step_cache else ""
        return f"{self.fleet.workers} x {v.gpus_per_worker} GPU, {self.fleet.slots} slots ({v.name}{cache})"

    def as_dict(self, rate: float) -> dict[str, Any]:
        return {
            "variant": self.fleet.variant.name,
            "workers": self.fleet.workers,
            "gpus_per_worker": self.fleet.variant.gpus_per_worker,
            "slots": self.fleet.slots,
            "step_cache": self.fleet.variant.step_cache,
            "gpus": self.fleet.gpus,
            "meets_slo": self.meets,
            "reason": self.failure,
            "gpu_hours_per_day": self.gpu_hours_per_day,
            "cost_per_day": self.cost_per_day,
            "cost_per_video": self.cost_per_video(rate),
            "prediction": self.prediction,
        }


@dataclass
class Plan:
    rate: float
    slo: Slo
    gpu_hour_cost: float
    poll_interval_s: float
    candidates: list[Candidate]
    best: Candidate | None
    next_cheaper: Candidate | None
    facade: FacadeCapacity | None
    profile: Profile
    seconds: float = 0.0
    curve: list[dict[str, Any]] = field(default_factory=list)  # predictions across rates, for the picture
    curve_label: str = ""  # the fleet the curve is for
    skipped: list[str] = field(default_factory=list)

    def facade_needs(self) -> dict[str, Any]:
        """Requests per second the clients' polling brings, and replicas to serve them."""
        chosen = self.best or (self.candidates[0] if self.candidates else None)
        e2e = chosen.prediction["e2e_s"]["p50"] if chosen is not None else None
        in_system = self.rate * (e2e or 0.0)  # Little's law: tasks being polled at any moment
        polls = in_system / self.poll_interval_s
        needs: dict[str, Any] = {"polls_per_s": polls, "submits_per_s": self.rate, "replicas": None}
        if self.facade is not None:
            busy = polls / self.facade.query_per_s + self.rate / self.facade.submit_per_s
            needs["replicas"] = max(1, math.ceil(busy / FACADE_HEADROOM))
        return needs

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate_per_s": self.rate,
            "slo": str(self.slo),
            "gpu_hour_cost": self.gpu_hour_cost,
            "best": self.best.as_dict(self.rate) if self.best else None,
            "next_cheaper": self.next_cheaper.as_dict(self.rate) if self.next_cheaper else None,
            "candidates": [c.as_dict(self.rate) for c in self.candidates],
            "facade": self.facade_needs(),
            "curve": self.curve,
            "planning_s": self.seconds,
            "skipped": self.skipped,
        }

    def lines(self) -> list[str]:
        searched = f"{len(self.candidates)} candidates in {self.seconds:.1f} s"
        out = [f"plan for {self.rate:g} jobs/s, SLO {self.slo}: {searched}"]
        if self.best is None:
            out.append("no candidate meets the SLO")
        else:
            b, p = self.best, self.best.prediction
            out += [
                f"cheapest: {b.label()}: utilisation {p['utilisation']:.0%}, "
                f"e2e p50 {p['e2e_s']['p50']:.1f} s, p95 {p['e2e_s']['p95']:.1f} s; "
                f"wait p95 {p['wait_s']['p95']:.1f} s",
                f"  {b.gpu_hours_per_day:g} GPU-hours/day, {b.cost_per_day:.2f} per day, "
                f"{b.cost_per_video(self.rate):.4f} per video",
            ]
        if self.next_cheaper is not None:
            out.append(f"next cheaper: {self.next_cheaper.label()}: {self.next_cheaper.failure}")
        needs = self.facade_needs()
        polls = f"{needs['polls_per_s']:.1f} polls/s at a {self.poll_interval_s:g} s interval"
        if needs["replicas"]:
            out.append(f"facade: {polls}: {needs['replicas']} replica(s)")
        else:
            out.append(f"facade: {polls}; for the replicas it needs, calibrate with --facade-bench")
        out += [f"skipped: {s}" for s in self.skipped]
        return out


def slot_choices(variant: Variant) -> list[int]:
    return sorted({s for s in SLOT_CHOICES if s <= variant.max_slots} | {variant.max_slots})


def knee(curve: Sequence[dict[str, Any]], key: str = "p95") -> float | None:
    """The rate where the latency curve bends most (Kneedle: for a convex, rising curve, the point
    farthest below the chord from its first to its last point, both axes scaled to 0..1)."""
    points = [(c["rate_per_s"], c["e2e_s"][key]) for c in curve if c["e2e_s"][key] is not None]
    if len(points) < 3:
        return None
    (x0, y0), (x1, y1) = points[0], points[-1]
    if x1 <= x0 or y1 <= y0:
        return None
    return float(max(points, key=lambda p: (p[0] - x0) / (x1 - x0) - (p[1] - y0) / (y1 - y0))[0])


def recommend(
    calibration: Calibration,
    profile: Profile,
    rate: float,
    slo: Slo,
    *,
    gpu_hour_cost: float,
    jobs: int = 200,
    replications: int = 5,
    seed: int = 0,
    tenants: int = 1,
    poll_interval_s: float = 12.0,
    variant: str | None = None,
) -> Plan:
    started = time.perf_counter()
    names = [job.name for job in profile.jobs]
    candidates: list[Candidate] = []
    skipped: list[str] = []
    variants = [calibration.variant(variant)] if variant else list(calibration.variants)
    starts: list[tuple[int, Variant, int, float]] = []  # (GPUs of the first fleet that keeps up, ...)
    for v in variants:
        missing = v.covers(names)
        if missing:
            skipped.append(f"variant {v.name}: no calibration for {', '.join(missing)}")
            continue
        for slots in slot_choices(v):
            per_worker = capacity(Fleet(v, 1, slots, tenants), profile, seed)
            first = max(1, math.ceil(rate / per_worker)) if per_worker > 0 else 1
            starts.append((first * v.gpus_per_worker, v, slots, per_worker))
    # Best first by cost: fleets are simulated cheapest first, across every variant and slot
    # count, so once one meets the SLO nothing dearer needs simulating.
    queue: list[tuple[int, int, int]] = []  # (GPUs, index into starts, workers)
    for n, (gpus, v, _slots, _rate) in enumerate(starts):
        workers = max(1, gpus // v.gpus_per_worker - 1)
        queue.append((workers * v.gpus_per_worker, n, workers))
    heapq.heapify(queue)
    bound = math.inf
    while queue:
        gpus, n, workers = heapq.heappop(queue)
        if gpus > bound:
            break
        first_gpus, v, slots, per_worker = starts[n]
        fleet = Fleet(v, workers, slots, tenants)
        run_jobs = max(jobs, JOBS_PER_SLOT * workers * slots)
        prediction = predict(
            fleet,
            profile,
            rate,
            jobs=run_jobs,
            replications=replications,
            seed=seed,
            max_rate=workers * per_worker,
            warmup=run_jobs,
        )
        candidate = Candidate(fleet, prediction, slo.failure(prediction), gpu_hour_cost)
        candidates.append(candidate)
        if candidate.meets:
            bound = min(bound, fleet.gpus)
        elif workers < first_gpus // v.gpus_per_worker + EXTRA_WORKERS:
            heapq.heappush(queue, ((workers + 1) * v.gpus_per_worker, n, workers + 1))
    meeting = [c for c in candidates if c.meets]
    best = min(meeting, key=lambda c: (c.cost_per_day, c.prediction["e2e_s"]["p95"])) if meeting else None
    cheaper = [c for c in candidates if not c.meets and (best is None or c.cost_per_day < best.cost_per_day)]
    next_cheaper = (
        max(cheaper, key=lambda c: (c.cost_per_day, -(c.prediction["e2e_s"]["p95"] or math.inf)))
        if cheaper
        else None
    )
    plan = Plan(
        rate,
        slo,
        gpu_hour_cost,
        poll_interval_s,
        candidates,
        best,
        next_cheaper,
        calibration.facade,
        profile,
        skipped=skipped,
    )
    if best is not None:
        curve = latency_curve(best.fleet, profile, best.prediction["max_rate_per_s"], jobs=jobs, seed=seed)
        # The plan's own prediction is a point of the same curve, from more runs.
        plan.curve = sorted([*curve, best.prediction], key=lambda p: float(p["rate_per_s"]))
        plan.curve_label = best.label()
    plan.seconds = time.perf_counter() - started
    return plan


def latency_curve(
    fleet: Fleet, profile: Profile, max_rate: float, *, jobs: int, seed: int, steady: bool = True
) -> list[dict[str, Any]]:
    """Predictions from 10 % to 95 % of capacity (fewer replications: it is for the picture), in
    steady state, or, with `steady=False`, for runs from empty like the load tests."""
    run_jobs = max(jobs, JOBS_PER_SLOT * fleet.workers * fleet.slots)
    warmup = run_jobs if steady else 0
    return [
        predict(
            fleet,
            profile,
            f * max_rate,
            jobs=run_jobs,
            replications=3,
            seed=seed,
            max_rate=max_rate,
            warmup=warmup,
        )
        for f in CURVE_FRACTIONS
    ]
