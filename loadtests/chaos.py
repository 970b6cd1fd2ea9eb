"""The long chaos run, by hand: `python -m loadtests.chaos --jobs 500 --workers 4 --kills 10`.

Starts a redis-server (AOF), `paddock api` and worker processes in a temp folder, submits jobs over
HTTP across several keys, SIGKILLs workers mid-job (restarting them) and restarts Redis once, then
checks that every task SUCCEEDED with exactly one result object, and prints the recovery times.
`--real` runs the real tiny models instead of the fast stand-in (about 8 CPU seconds per job).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import ChaosConfig, chaos_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loadtests.chaos", description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--slots", type=int, default=2, help="PADDOCK_MAX_CONCURRENT_JOBS per worker")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--duration", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument("--claim-timeout", type=float, default=6.0)
    parser.add_argument("--step-s", type=float, default=0.25, help="stand-in model: seconds per step")
    parser.add_argument("--real", action="store_true", help="real tiny models instead of the stand-in")
    args = parser.parse_args(argv)
    cfg = ChaosConfig(
        jobs=args.jobs,
        keys=args.keys,
        workers=max(args.workers, 3),
        slots=args.slots,
        kills=args.kills,
        claim_timeout_s=args.claim_timeout,
        step_s=args.step_s,
        deadline_s=args.duration,
        real_model=args.real,
    )
    with tempfile.TemporaryDirectory(prefix="paddock-chaos-") as tmp, chaos_stack(Path(tmp), cfg) as run:
        run.submit_all()
        seconds = run.drive()
        print(run.report(seconds))
        times = [k.recovered_s for k in run.kills if k.recovered_s is not None]
        if times:
            print(f"recovery: median {statistics.median(times):.2f}s, max {max(times):.2f}s")
        bad = [t for t in run.task_ids if len(run.result_objects(t)) != 1]
        statuses = run.statuses(run.redis())
        failed = [t for t, s in statuses.items() if s != "SUCCEEDED"]
        print(
            f"tasks: {len(run.task_ids)}, not SUCCEEDED: {len(failed)}, "
            f"without exactly one result: {len(bad)}"
        )
        return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
