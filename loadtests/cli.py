"""`paddock loadtest`: offer a job mix at a rate over HTTP and write `jobs.csv` and `summary.json`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests.arrivals import SCHEDULES, Schedule
from loadtests.generator import LoadConfig, LoadRun, ProgressLine, run_load
from loadtests.profile import Profile
from loadtests.summary import summarise, write_csv, write_summary
from loadtests.wire import is_loopback_url

DEFAULT_KEY_FILE = Path("paddock-data/api_key")


def api_keys(given: Sequence[str] | None) -> tuple[str, ...]:
    """`--api-key` (repeatable: one tenant each), else PADDOCK_API_KEY or DASHSCOPE_API_KEY, else
    the key `make run` wrote to paddock-data/api_key."""
    if given:
        return tuple(given)
    key = os.environ.get("PADDOCK_API_KEY") or os.environ.get("DASHSCOPE_API_KEY", "")
    if not key and DEFAULT_KEY_FILE.is_file():
        key = DEFAULT_KEY_FILE.read_text().strip()
    return (key,) if key else ()


def poll_range(text: str) -> tuple[float, float]:
    """`12` or `10-15` (seconds; each wait is drawn uniformly from the range)."""
    low, _, high = text.partition("-")
    bounds = (float(low), float(high or low))
    if bounds[0] <= 0 or bounds[1] < bounds[0]:
        raise argparse.ArgumentTypeError(f"poll interval must be positive, low-high: {text!r}")
    return bounds


def rate_list(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """--base-url, --api-key, --allow-remote: which stack is loaded (shared with `paddock plan`)."""
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the stack's base URL")
    parser.add_argument("--api-key", action="append", help="API key; repeat for several tenants")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a base URL that is not loopback (your own hosts only)",
    )


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=0.1, help="jobs per second (Poisson), the ramp's top")
    parser.add_argument("--schedule", choices=SCHEDULES, default="poisson")
    parser.add_argument("--rates", type=rate_list, default=(), help="step: rates in turn, e.g. 0.1,0.2,0.3")
    parser.add_argument("--step-s", type=float, default=60.0, help="step: seconds per rate")
    parser.add_argument("--ramp-from", type=float, default=0.0, help="ramp: the starting rate")
    parser.add_argument("--ramp-s", type=float, default=60.0, help="ramp: seconds to reach --rate")


def schedule_from(args: argparse.Namespace) -> Schedule:
    return Schedule(
        kind=args.schedule,
        rate=args.rate,
        rates=args.rates,
        step_s=args.step_s,
        ramp_from=args.ramp_from,
        ramp_s=args.ramp_s,
    )


def check_target(args: argparse.Namespace) -> tuple[str, ...]:
    """The keys to use; exits with a message when the target is refused or no key is known."""
    if not args.allow_remote and not is_loopback_url(args.base_url):
        sys.exit(f"refusing to load {args.base_url}: not loopback (--allow-remote for your own hosts)")
    keys = api_keys(args.api_key)
    if not keys:
        sys.exit("no API key: pass --api-key, or set PADDOCK_API_KEY or DASHSCOPE_API_KEY")
    return keys


def loadtest_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddock loadtest", description=__doc__)
    add_target_arguments(parser)
    parser.add_argument("--profile", required=True, help="the job mix (YAML)")
    add_schedule_arguments(parser)
    parser.add_argument("--jobs", type=int, default=100, help="jobs to send at most")
    parser.add_argument("--max-duration", type=float, default=3600.0, help="seconds the whole run may take")
    parser.add_argument(
        "--poll-interval", type=poll_range, default=(10.0, 15.0), help="seconds between polls: 12 or 10-15"
    )
    parser.add_argument("--seed", type=int, default=0, help="arrival times and classes (replayable)")
    parser.add_argument("--no-download", action="store_true", help="skip downloading the videos")
    parser.add_argument("--out", required=True, type=Path, help="folder for jobs.csv and summary.json")
    return parser


def run_loadtest(config: LoadConfig, out: Path, *, quiet: bool = False) -> dict[str, Any]:
    """Run one load test and write `out/jobs.csv`, `out/summary.json` and `out/run.json`."""
    out.mkdir(parents=True, exist_ok=True)

    def progress(run: LoadRun) -> ProgressLine:
        return ProgressLine(run, config.jobs)

    rows = asyncio.run(run_load(config, progress=None if quiet else progress))
    last_offset = max((r.intended_offset_s for r in rows), default=0.0)
    summary = summarise(rows, rate_per_s=config.schedule.mean_rate(last_offset))
    write_csv(rows, out / "jobs.csv")
    write_summary(summary, out / "summary.json")
    offered = {
        "profile": config.profile.source,
        "schedule": asdict(config.schedule),
        "jobs": config.jobs,
        "seed": config.seed,
        "poll_interval_s": list(config.poll_interval_s),
        "api_keys": len(config.api_keys),
    }
    (out / "run.json").write_text(json.dumps(offered, indent=2) + "\n")
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """A few readable lines of a summary."""

    def row(name: str) -> str:
        s = summary[name]
        if s["p50"] is None:
            return f"{name:<10} -"
        return (
            f"{name:<10} mean {s['mean']:8.2f}  p50 {s['p50']:8.2f}  p95 {s['p95']:8.2f}  p99 {s['p99']:8.2f}"
        )

    return [
        f"offered {summary['rate_per_s']:.4g} jobs/s: {summary['jobs']} sent, "
        f"{summary['succeeded']} succeeded, {summary['failed']} failed; "
        f"throughput {summary['throughput_per_s']:.4g} jobs/s; "
        f"saturated: {str(summary['saturated']).lower()}",
        row("wait_s"),
        row("service_s"),
        row("e2e_s"),
    ]


def loadtest_main(argv: Sequence[str] | None = None) -> int:
    args = loadtest_parser().parse_args(argv)
    keys = check_target(args)
    try:
        profile = Profile.load(args.profile)
        schedule = schedule_from(args)
    except (OSError, ValueError) as exc:
        sys.exit(f"paddock loadtest: {exc}")
    config = LoadConfig(
        base_url=args.base_url.rstrip("/"),
        api_keys=keys,
        profile=profile,
        schedule=schedule,
        jobs=args.jobs,
        max_duration_s=args.max_duration,
        poll_interval_s=args.poll_interval,
        seed=args.seed,
        download=not args.no_download,
    )
    summary = run_loadtest(config, args.out)
    print("\n".join(summary_lines(summary)))
    print(f"wrote {args.out / 'jobs.csv'} and {args.out / 'summary.json'}")
    return 0
