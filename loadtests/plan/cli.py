"""`paddock plan calibrate | predict | recommend | validate` (loadtests/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.cli import add_target_arguments, check_target
from loadtests.plan.calibration import Calibration, FacadeCapacity
from loadtests.profile import Profile


def clean(value: Any) -> Any:
    """JSON without Infinity/NaN (null instead), floats rounded to 4 significant digits."""
    if isinstance(value, float):
        return None if math.isinf(value) or math.isnan(value) else float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _calibrate_parser(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="measure a running stack (or ingest GPU/facade benchmarks)")
    add_target_arguments(p)
    p.add_argument("--profile", required=True, help="the job mix (YAML)")
    p.add_argument("--out", type=Path, required=True, help="calibration JSON to write")
    p.add_argument(
        "--slots",
        type=int,
        default=4,
        help="the stack's PADDOCK_MAX_CONCURRENT_JOBS (--from-bench: the most to plan)",
    )
    p.add_argument("--workers", type=int, default=1, help="workers the stack runs")
    p.add_argument("--metrics-url", action="append", help="/metrics pages (default: BASE_URL/metrics)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each class alone")
    p.add_argument("--burst-jobs", type=int, default=0, help="jobs in the burst (default: 3 per slot)")
    p.add_argument("--bursts", type=int, default=3, help="bursts run, between the lone rounds")
    p.add_argument("--variant", default="measured", help="a name for this configuration")
    p.add_argument("--gpus-per-worker", type=int, default=1)
    p.add_argument("--step-cache", action="store_true", help="the stack runs with a step cache on")
    p.add_argument("--device", choices=("host", "gpu"), default="host", help="where the steps run")
    p.add_argument("--from-bench", type=Path, help="`paddock bench engine --real-size` output: a GPU variant")
    p.add_argument("--calibration", type=Path, help="with --from-bench/--facade-bench: the file to extend")
    p.add_argument("--steps", type=int, default=40, help="with --from-bench: denoising steps per job")
    p.add_argument(
        "--host-cores", type=float, help="with --from-bench: parallel host activities of a GPU worker"
    )
    p.add_argument(
        "--vae-decode-s",
        type=float,
        help="with --from-bench: VAE decode of a 720P 5 s clip, s (default: the bench's, else 0)",
    )
    p.add_argument("--facade-bench", type=Path, help="`paddock bench facade` output: facade capacity")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddock plan", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    _calibrate_parser(sub)
    predict = sub.add_parser("predict", help="latency and capacity of one fleet at one rate")
    _fleet_arguments(predict)
    predict.add_argument("--rate", type=float, required=True, help="arrival rate, jobs per second")
    predict.add_argument("--workers", type=int, required=True)
    predict.add_argument("--slots", type=int, help="jobs per worker (default: the calibrated stack's)")
    predict.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="jobs offered first and left out: steady state (recommend: --jobs)",
    )
    predict.add_argument("--json", action="store_true", help="print the prediction as JSON")
    recommend = sub.add_parser("recommend", help="the cheapest fleet that meets an SLO")
    _fleet_arguments(recommend)
    recommend.add_argument("--rate", type=float, required=True, help="arrival rate, jobs per second")
    recommend.add_argument("--slo", required=True, help='e.g. "p95_e2e<=180" or "p95_e2e<=180,p95_wait<=60"')
    recommend.add_argument("--gpu-hour-cost", type=float, required=True, help="price of one GPU-hour")
    recommend.add_argument("--report", type=Path, help="write an HTML report here (PNG plots beside it)")
    recommend.add_argument("--measured", type=Path, nargs="*", default=[], help="load-test folders to plot")
    recommend.add_argument("--poll-interval", type=float, default=12.0, help="clients' poll interval, s")
    recommend.add_argument("--json", action="store_true")
    from loadtests.plan.validate import add_validate_parser

    add_validate_parser(sub)
    return parser


def _fleet_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibration", type=Path, nargs="+", required=True, help="calibration JSON file(s)")
    p.add_argument("--profile", required=True, help="the job mix (YAML)")
    p.add_argument("--variant", help="which calibrated variant (default: the first)")
    p.add_argument("--jobs", type=int, default=200, help="jobs per simulated run")
    p.add_argument("--replications", type=int, default=5, help="simulated runs per prediction")
    p.add_argument("--seed", type=int, default=0, help="the first run's arrivals (= loadtest --seed)")
    p.add_argument("--tenants", type=int, default=1, help="API keys the jobs are spread over")


def _calibrate(args: argparse.Namespace, profile: Profile) -> int:
    from loadtests.plan.calibrate import StackRun, calibrate_stack, from_bench, parse_bench

    if args.from_bench or args.facade_bench:
        if args.calibration is None:
            sys.exit("--from-bench and --facade-bench extend a calibration: pass --calibration")
        calibration = Calibration.load(args.calibration)
        if args.from_bench:
            base = calibration.variants[0]
            bench = parse_bench(args.from_bench.read_text())
            from loadtests.plan.calibrate import real_tokens
            from loadtests.profile import JobClass

            if args.vae_decode_s is not None:
                clip = real_tokens(JobClass(name="720P-5s", model="", resolution="720P", duration=5))
                vae_s_per_token = args.vae_decode_s / clip
            else:
                vae_s_per_token = bench.vae_s_per_token or 0.0
            variant = from_bench(
                bench,
                base,
                profile,
                steps=args.steps,
                host_parallelism=args.host_cores or base.host_parallelism,
                vae_s_per_token=vae_s_per_token,
                max_slots=args.slots,
                name=args.variant if args.variant != "measured" else "gpu",
            )
            calibration = calibration.merged(Calibration((variant,)))
        if args.facade_bench:
            from benchmarks.facade_bench import parse_output

            query, submit = parse_output(args.facade_bench.read_text())
            calibration = calibration.merged(Calibration((), FacadeCapacity(query, submit)))
        calibration.save(args.out)
        print(f"wrote {args.out}: variants {', '.join(v.name for v in calibration.variants)}")
        return 0
    keys = check_target(args)
    stack = StackRun(
        base_url=args.base_url.rstrip("/"),
        api_keys=keys,
        profile=profile,
        slots=args.slots,
        workers=args.workers,
        metrics_urls=tuple(args.metrics_url or ()),
        repeats=args.repeats,
        burst_jobs=args.burst_jobs,
        bursts=args.bursts,
        variant=args.variant,
        gpus_per_worker=args.gpus_per_worker,
        step_cache=args.step_cache,
        device_on_host=args.device == "host",
    )
    calibration = asyncio.run(calibrate_stack(stack))
    calibration.save(args.out)
    print(f"wrote {args.out}")
    return 0


def _predict(args: argparse.Namespace, profile: Profile) -> int:
    from loadtests.plan.predict import predict
    from loadtests.plan.simulate import Fleet

    calibration = Calibration.load_all(args.calibration)
    variant = calibration.variant(args.variant)
    fleet = Fleet(variant, args.workers, args.slots or variant.max_slots, args.tenants)
    runs = {"jobs": args.jobs, "replications": args.replications, "seed": args.seed, "warmup": args.warmup}
    result = clean(predict(fleet, profile, args.rate, **runs))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{fleet.workers} worker(s) x {fleet.slots} slots ({variant.name}) at {args.rate:g} jobs/s: "
        f"utilisation {result['utilisation']}, capacity {result['max_rate_per_s']} jobs/s, "
        f"saturated: {str(result['saturated']).lower()}"
    )
    print(f"  wait p50 {result['wait_s']['p50']} s, p95 {result['wait_s']['p95']} s")
    print(f"  e2e  p50 {result['e2e_s']['p50']} s, p95 {result['e2e_s']['p95']} s")
    analytic = result["analytic"]
    e2e = analytic["e2e_s"]
    print(f"  analytic (M/G/c, c = {analytic['servers']}): e2e mean {e2e['mean']} s, p95 {e2e['p95']} s")
    return 0


def _recommend(args: argparse.Namespace, profile: Profile) -> int:
    from loadtests.plan.recommend import Slo, recommend

    calibration = Calibration.load_all(args.calibration)
    try:
        slo = Slo.parse(args.slo)
    except ValueError as exc:
        sys.exit(f"paddock plan recommend: {exc}")
    plan = recommend(
        calibration,
        profile,
        args.rate,
        slo,
        gpu_hour_cost=args.gpu_hour_cost,
        jobs=args.jobs,
        replications=args.replications,
        seed=args.seed,
        tenants=args.tenants,
        poll_interval_s=args.poll_interval,
        variant=args.variant,
    )
    if args.report:
        from loadtests.plan.report import write_report

        write_report(plan, args.report, measured=args.measured)
        print(f"wrote {args.report}")
    print(json.dumps(clean(plan.as_dict()), indent=2) if args.json else "\n".join(plan.lines()))
    return 0 if plan.best is not None else 1


def plan_main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.action == "validate":
        from loadtests.plan.validate import validate_main

        return validate_main(args)
    try:
        profile = Profile.load(args.profile)
    except (OSError, ValueError) as exc:
        sys.exit(f"paddock plan: {exc}")
    if args.action == "calibrate":
        return _calibrate(args, profile)
    if args.action == "predict":
        return _predict(args, profile)
    return _recommend(args, profile)
