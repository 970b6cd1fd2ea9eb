"""`paddock plan validate`: the end-to-end check of the planner against real load tests.

Start a stack (or point at one), calibrate on it, predict its capacity, load-test it at fractions
of that capacity (by default 30, 50, 70 and 85 % and one rate above it), predict the same rates,
and print measured against predicted with the error of each, and whether the goals hold:

- p50 and p95 end-to-end within ±15 % at every rate up to 85 % of capacity;
- p95 wait within ±20 % or ±2 s there;
- the maximum sustainable rate within ±10 % (measured: the throughput of the run above capacity);
- the run above capacity flagged saturated by both the planner and the load test;
- planning every candidate in under 60 s.

Three predictions are compared: `predicted`, what the planner says for the rate (pooled over fresh
arrivals); `replayed`, the simulation of exactly the arrivals the load test offered (same seed),
which separates the model's error from the luck of one finite run; and `adjusted`, the prediction
for the machine as it was during that load test. A shared machine changes by tens of percent over
half an hour, so before every load test and after the last, one class is timed alone and one
burst is run. `adjusted` scales the calibration by the mean of the two lone times around each run
over the calibrated one, and takes the mean of the two bursts' host parallelism: that separates
the model's error from the machine's drift. So does the check of every measured job against the
model replayed on the jobs that really ran beside it (`neighbours`), from the load test's own rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtests.arrivals import Schedule
from loadtests.cli import api_keys, rate_list, run_loadtest
from loadtests.generator import LoadConfig
from loadtests.plan.calibration import Calibration
from loadtests.plan.neighbours import ServiceCheck, service_check
from loadtests.plan.predict import capacity, predict
from loadtests.plan.simulate import Fleet
from loadtests.profile import Profile
from loadtests.summary import read_csv

if TYPE_CHECKING:
    from loadtests.plan.calibrate import MachineNow, StackRun

DEFAULT_FRACTIONS = (0.3, 0.5, 0.7, 0.85, 1.5)  # 1.5: above capacity by more than the machine drifts
LATENCY_TOLERANCE = 0.15
WAIT_TOLERANCE, WAIT_SLACK_S = 0.20, 2.0
CAPACITY_TOLERANCE = 0.10
PLANNING_LIMIT_S = 60.0
FIDELITY_UP_TO = 0.85  # latency goals apply up to this share of the predicted capacity
DRIFT_LIMIT = 0.10  # a lone job's service changing more than this means the machine changed


def add_validate_parser(sub: Any) -> None:
    p = sub.add_parser("validate", help="calibrate, load-test at several rates, compare with predictions")
    p.add_argument("--profile", required=True, help="the job mix (YAML)")
    p.add_argument("--base-url", help="a running stack (default: start `paddock serve` with the tiny models)")
    p.add_argument("--api-key", action="append", help="with --base-url: its API key(s)")
    p.add_argument("--slots", type=int, default=4, help="jobs per worker (started stack: its setting)")
    p.add_argument("--workers", type=int, default=1, help="with --base-url: workers behind it")
    p.add_argument(
        "--fractions", type=rate_list, default=DEFAULT_FRACTIONS, help="rates as shares of capacity"
    )
    p.add_argument("--rates", type=rate_list, default=(), help="absolute rates instead of --fractions")
    p.add_argument("--jobs", type=int, default=100, help="jobs per load test")
    p.add_argument("--poll-interval", type=float, default=2.0, help="the load tests' poll interval, s")
    p.add_argument("--repeats", type=int, default=3, help="calibration: runs of each class alone")
    p.add_argument("--burst-jobs", type=int, default=0, help="jobs in each burst (default: 3 per slot)")
    p.add_argument("--calibration", type=Path, help="use this calibration instead of measuring one")
    p.add_argument("--replications", type=int, default=5, help="simulated runs per prediction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("validation"), help="folder for everything it writes")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")


@dataclass
class RatePoint:
    """One rate: what the load test measured and what the planner predicted for it."""

    rate: float
    share: float  # of the predicted capacity
    measured: dict[str, Any]
    predicted: dict[str, Any]
    replayed: dict[str, Any]
    adjusted: dict[str, Any]
    slowdown: float  # the machine during this run against at calibration (lone job time ratio)
    parallelism: float  # the host parallelism during this run (mean of the bursts around it)
    service: ServiceCheck | None = None  # each measured job against the model on its neighbours


PREDICTIONS = ("predicted", "replayed", "adjusted")


def error(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or measured is None or measured == 0:
        return None
    return (predicted - measured) / measured


def _within(predicted: float | None, measured: float | None, tolerance: float, slack: float = 0.0) -> bool:
    if predicted is None or measured is None:
        return False
    return abs(predicted - measured) <= max(tolerance * abs(measured), slack)


def capacity_run(points: list[RatePoint]) -> RatePoint | None:
    """The run above capacity that finished the most jobs a second: its throughput is the measured
    maximum sustainable rate. None without a run above capacity."""
    above = [p for p in points if p.share > 1.0]
    return max(above, key=lambda p: p.measured["throughput_per_s"], default=None)


def goals(points: list[RatePoint], planning_s: float, key: str) -> dict[str, bool | None]:
    """Each goal's verdict for the `key` prediction (one of `PREDICTIONS`); None: no run to judge.
    The capacity judged is the one that prediction assumed (`adjusted`: the machine's speed then)."""
    within = [p for p in points if p.share <= FIDELITY_UP_TO + 1e-9]
    above = [p for p in points if p.share > 1.0]
    latency = all(
        _within(getattr(p, key)["e2e_s"][q], p.measured["e2e_s"][q], LATENCY_TOLERANCE)
        for p in within
        for q in ("p50", "p95")
    )
    wait = all(
        _within(getattr(p, key)["wait_s"]["p95"], p.measured["wait_s"]["p95"], WAIT_TOLERANCE, WAIT_SLACK_S)
        for p in within
    )
    top = capacity_run(points)
    return {
        "e2e_p50_p95_within_15pct": latency if within else None,
        "wait_p95_within_20pct_or_2s": wait if within else None,
        "max_rate_within_10pct": (
            _within(getattr(top, key)["max_rate_per_s"], top.measured["throughput_per_s"], CAPACITY_TOLERANCE)
            if top is not None
            else None
        ),
        "over_capacity_saturated_in_both": (
            all(p.measured["saturated"] and getattr(p, key)["saturated"] for p in above) if above else None
        ),
        "planning_under_60s": planning_s < PLANNING_LIMIT_S,
    }


def _fmt(value: float | None, err: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" + (f" ({err:+.0%})" if err is not None else "")


def table(points: list[RatePoint], key: str = "predicted") -> list[str]:
    """Markdown: measured against `key` predictions, with the relative error of each."""
    lines = [
        f"| rate (jobs/s) | share of capacity | e2e p50 measured | {key} | e2e p95 measured | {key} | "
        f"wait p95 measured | {key} | saturated measured / {key} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        m, q = p.measured, getattr(p, key)
        cells = [f"{p.rate:.4g}", f"{p.share:.0%}"]
        for metric, pct in (("e2e_s", "p50"), ("e2e_s", "p95"), ("wait_s", "p95")):
            cells += [_fmt(m[metric][pct]), _fmt(q[metric][pct], error(q[metric][pct], m[metric][pct]))]
        cells.append(f"{str(m['saturated']).lower()} / {str(q['saturated']).lower()}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


@contextlib.contextmanager
def _stack(args: argparse.Namespace) -> Iterator[tuple[str, tuple[str, ...]]]:
    if args.base_url:
        keys = api_keys(args.api_key)
        if not keys:
            sys.exit("paddock plan validate: --base-url needs --api-key")
        yield args.base_url.rstrip("/"), keys[:1]
        return
    from loadtests.stack import local_serve

    with local_serve(args.slots, args.out / "serve.log") as stack:
        yield stack.base_url, stack.api_keys[:1]


def _load_tests(
    args: argparse.Namespace,
    stack: StackRun,
    fleet: Fleet,
    cap: float,
    rates: list[float],
    calibrated: float,
) -> tuple[list[RatePoint], list[MachineNow]]:
    """Load-test each rate (seed = --seed + its index) and predict it, fresh, replayed and for the
    machine as it was around the run (`calibrated`: the probes' class alone at calibration). Also
    returns the machine's state before each run and after the last."""
    from loadtests.plan.calibrate import machine_now, slowdown

    machine: list[MachineNow] = [asyncio.run(machine_now(stack, fleet.variant))]
    points = []
    for i, rate in enumerate(rates):
        seed = args.seed + i
        config = LoadConfig(
            base_url=stack.base_url,
            api_keys=stack.api_keys,
            profile=stack.profile,
            schedule=Schedule(rate=rate),
            jobs=args.jobs,
            max_duration_s=3 * args.jobs / rate + 900,
            poll_interval_s=(args.poll_interval, args.poll_interval),
            seed=seed,
        )
        print(f"validate: load test {i + 1}/{len(rates)} at {rate:.4g} jobs/s", flush=True)
        measured = run_loadtest(config, args.out / f"rate-{i + 1}")
        service = service_check(read_csv(args.out / f"rate-{i + 1}" / "jobs.csv"), fleet.variant)
        machine.append(asyncio.run(machine_now(stack, fleet.variant)))
        slower = slowdown([m.lone_s for m in machine[-2:]], calibrated)
        parallelism = statistics.fmean(m.parallelism for m in machine[-2:])
        then = replace(fleet.variant.slowed(slower), host_parallelism=parallelism)
        on_the_day = replace(fleet, variant=then)
        fresh = {"jobs": args.jobs, "replications": args.replications, "seed": 1000 + seed}
        predicted = predict(fleet, stack.profile, rate, max_rate=cap, **fresh)
        replayed = predict(
            fleet, stack.profile, rate, jobs=args.jobs, replications=1, seed=seed, max_rate=cap
        )
        adjusted = predict(
            on_the_day, stack.profile, rate, max_rate=capacity(on_the_day, stack.profile), **fresh
        )
        points.append(
            RatePoint(rate, rate / cap, measured, predicted, replayed, adjusted, slower, parallelism, service)
        )
    return points, machine


def validate_main(args: argparse.Namespace) -> int:
    from loadtests.plan.calibrate import StackRun, calibrate_stack
    from loadtests.plan.recommend import Slo, latency_curve, recommend
    from loadtests.plan.report import write_report

    profile = Profile.load(args.profile)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _stack(args) as (base_url, keys):
        print(f"validate: stack at {base_url}", flush=True)
        stack = StackRun(
            base_url,
            keys,
            profile,
            slots=args.slots,
            workers=args.workers,
            repeats=args.repeats,
            burst_jobs=args.burst_jobs,
            poll_s=args.poll_interval,
        )
        if args.calibration:
            calibration = Calibration.load(args.calibration)
        else:
            calibration = asyncio.run(calibrate_stack(stack))
            calibration.save(args.out / "calibration.json")
        fleet = Fleet(calibration.variants[0], args.workers, args.slots)
        cap = capacity(fleet, profile, seed=args.seed)
        rates = list(args.rates) or [f * cap for f in args.fractions]
        listed = ", ".join(f"{r:.3g}" for r in rates)
        print(f"validate: predicted capacity {cap:.4g} jobs/s; load tests at {listed} jobs/s", flush=True)
        minutes = sum(args.jobs / r for r in rates) / 60
        print(f"validate: about {minutes:.0f} min of load tests ({args.jobs} jobs each)", flush=True)
        first = profile.jobs[0].name
        calibrated = fleet.variant.classes[first].alone_s  # the lone probes' class
        points, machine = _load_tests(args, stack, fleet, cap, rates, calibrated)
    # Plan for the middle rate with its measured p95 as the SLO: times planning every candidate.
    middle = points[min(len(points) - 1, 2)]
    slo = Slo.parse(f"p95_e2e<={middle.measured['e2e_s']['p95'] or 60.0:.1f}")
    plan = recommend(
        calibration, profile, middle.rate, slo, gpu_hour_cost=1.0, replications=args.replications
    )
    plan.curve = latency_curve(fleet, profile, cap, jobs=args.jobs, seed=args.seed, steady=False)
    plan.curve_label = f"validated stack: {args.workers} worker(s) x {args.slots} slots"
    write_report(
        plan, args.out / "report.html", measured=[args.out / f"rate-{i + 1}" for i in range(len(points))]
    )
    verdicts = {key: goals(points, plan.seconds, key) for key in PREDICTIONS}
    top = capacity_run(points)
    measured_max = top.measured["throughput_per_s"] if top is not None else None
    lines = [
        f"# paddock plan validate: {profile.source}, {args.workers} worker(s) x {args.slots} slots",
        "",
        *table(points, "predicted"),
        "",
        *table(points, "replayed"),
        "",
        *table(points, "adjusted"),
        "",
        capacity_line(cap, top),
        f"planning every candidate: {plan.seconds:.1f} s ({len(plan.candidates)} candidates)",
        drift_line(first, calibrated, [m.lone_s for m in machine]),
        parallelism_line(fleet.variant.host_parallelism, [m.parallelism for m in machine]),
        *service_lines(points),
        f"wall time: {(time.monotonic() - started) / 60:.1f} min",
        "",
        *(
            f"- {key}: {goal}: {_verdict(ok)}"
            for key, found in verdicts.items()
            for goal, ok in found.items()
        ),
    ]
    (args.out / "validation.md").write_text("\n".join(lines) + "\n")
    result = {"capacity_per_s": cap, "measured_max_per_s": measured_max, "planning_s": plan.seconds}
    result |= {
        "machine": {
            "class": first,
            "calibrated": {"alone_s": calibrated, "host_parallelism": fleet.variant.host_parallelism},
            "before_each_and_after": [vars(m) for m in machine],
        }
    }
    result |= {"goals": verdicts, "points": [asdict(p) for p in points]}
    (args.out / "validation.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("\n".join(lines))
    print(f"validate: wrote {args.out}/validation.md, validation.json, report.html")
    missed = any(ok is False for found in verdicts.values() for ok in found.values())
    return 1 if args.strict and missed else 0


def capacity_line(cap: float, top: RatePoint | None) -> str:
    """Predicted against measured maximum rate, and the adjusted prediction for that run's machine."""
    measured = top.measured["throughput_per_s"] if top is not None else None
    line = f"maximum sustainable rate: predicted {cap:.4g} jobs/s, measured "
    line += _fmt(measured, error(cap, measured))
    if top is None:
        return line
    adjusted = top.adjusted["max_rate_per_s"]
    return (
        line + f"; adjusted to the machine during that run (x{top.slowdown:.2f} slower, "
        f"host parallelism {top.parallelism:.2f}): {_fmt(adjusted, error(adjusted, measured))}"
    )


def drift_line(name: str, calibrated: float, lone: list[float]) -> str:
    """Whether the machine stayed the same: one class alone at calibration, before each load test
    and after the last."""
    changes = [t / calibrated - 1 for t in lone if math.isfinite(t)] if calibrated > 0 else []
    times = ", ".join(f"{t:.2f}" for t in lone)
    line = (
        f"drift: {name} alone took {calibrated:.2f} s at calibration; "
        f"before each load test and after the last: {times} s"
    )
    widest = max(changes, key=abs, default=0.0)
    if abs(widest) > DRIFT_LIMIT:
        return line + f" (up to {widest:+.0%}): the machine changed under the test; see `adjusted`"
    return line + f" (up to {widest:+.0%})"


def parallelism_line(calibrated: float, fitted: list[float]) -> str:
    each = ", ".join(f"{p:.2f}" for p in fitted)
    return (
        f"host parallelism: {calibrated:.2f} at calibration; before each load test and after the last: {each}"
    )


def service_lines(points: list[RatePoint]) -> list[str]:
    """Each run's jobs against the model on their real neighbours (`neighbours.service_check`)."""
    lines = [f"- {p.share:.0%}: {p.service.describe()}" for p in points if p.service is not None]
    header = "service over the model's, each job on its real neighbours (1.00: model and machine hold):"
    return [header, *lines] if lines else []


def _verdict(ok: bool | None) -> str:
    return "no run to judge" if ok is None else ("PASS" if ok else "FAIL")
