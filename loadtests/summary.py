"""One row per job (`jobs.csv`), the run's summary (`summary.json`), and saturation detection.

Wait, service and end-to-end come from the server's own task times (`scheduled_time -
submit_time`, `end_time - scheduled_time`, `end_time - submit_time`), so the poll interval does
not blur them. The planner's simulation produces the same rows, and is summarised by the same
functions, so measured and predicted numbers mean exactly the same thing.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# Saturated: over the second half of the arrival window the number of jobs in the system grew by
# more than this share of the arrival rate (completions fell more than 10 % behind arrivals).
SATURATION_GROWTH = 0.10
# ...and by at least this many jobs, so a short, noisy run is not called saturated by chance.
SATURATION_MIN_JOBS = 3.0
_GRID = 200


@dataclass
class JobRow:
    """What happened to one job. Times are epoch seconds; None where the job never got there."""

    index: int
    job_class: str
    tenant: int = 0
    intended_offset_s: float = 0.0
    send_delay_s: float | None = None  # actual send minus intended send (the generator's own lag)
    http_status: int | None = None
    task_id: str = ""
    status: str = "NOT_SENT"
    code: str = ""
    submit_time: float | None = None
    scheduled_time: float | None = None
    end_time: float | None = None
    polls: int = 0
    client_e2e_s: float | None = None  # from the intended send time to seeing the final state
    video_bytes: int = 0
    download_s: float | None = None

    @property
    def wait_s(self) -> float | None:
        return _diff(self.scheduled_time, self.submit_time)

    @property
    def service_s(self) -> float | None:
        return _diff(self.end_time, self.scheduled_time)

    @property
    def e2e_s(self) -> float | None:
        return _diff(self.end_time, self.submit_time)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def _diff(later: float | None, earlier: float | None) -> float | None:
    return later - earlier if later is not None and earlier is not None else None


_COLUMNS = [f.name for f in fields(JobRow)]
_DERIVED = ["wait_s", "service_s", "e2e_s"]


def write_csv(rows: Iterable[JobRow], path: Path) -> None:
    """`jobs.csv`: every field of `JobRow` plus the derived wait, service and e2e seconds."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_COLUMNS + _DERIVED)
        for row in rows:
            values = [getattr(row, name) for name in _COLUMNS + _DERIVED]
            writer.writerow(["" if v is None else v for v in values])


def read_csv(path: Path) -> list[JobRow]:
    """The rows `write_csv` wrote."""
    rows = []
    with path.open(newline="") as f:
        for record in csv.DictReader(f):
            rows.append(JobRow(**{name: _parse(name, record.get(name, "")) for name in _COLUMNS}))
    return rows


_TEXT = frozenset({"job_class", "task_id", "status", "code"})
_WHOLE = frozenset({"index", "tenant", "polls", "video_bytes", "http_status"})


def _parse(name: str, raw: str) -> Any:
    if name in _TEXT:
        return raw
    if raw == "":
        return None
    return int(raw) if name in _WHOLE else float(raw)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation between order statistics."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stats(values: Sequence[float]) -> dict[str, float | None]:
    """mean, p50, p95, p99 (None for an empty sample, so the JSON stays valid)."""
    if not values:
        return {"mean": None, "p50": None, "p95": None, "p99": None}
    return {
        "mean": sum(values) / len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
    }


def throughput(rows: Sequence[JobRow]) -> float:
    """Completions per second between the 10th and the 90th percentile completion: the arrival
    rate when the system keeps up, its capacity when it does not (the window leaves out the
    ramp from empty and the drain at the end, when fewer jobs share the machine)."""
    ends = sorted(r.end_time for r in rows if r.succeeded and r.end_time is not None)
    if len(ends) < 2:
        return 0.0
    start, stop = ends[round(0.1 * (len(ends) - 1))], ends[round(0.9 * (len(ends) - 1))]
    if stop <= start:
        start, stop = ends[0], ends[-1]
    if stop <= start:
        return 0.0
    # Completions in (start, stop]: jobs that finish together (workers in step) count whole.
    return (bisect.bisect_right(ends, stop) - bisect.bisect_right(ends, start)) / (stop - start)


def backlog_growth(rows: Sequence[JobRow]) -> tuple[float, float]:
    """(slope of the number of jobs in the system, in jobs/s; arrival rate, in jobs/s), both over
    the second half of the arrival window (the first half lets the queue fill from empty)."""
    submits = sorted(r.submit_time for r in rows if r.submit_time is not None)
    if len(submits) < 4:
        return 0.0, 0.0
    first, last = submits[0], submits[-1]
    start = first + (last - first) / 2
    if last <= start:
        return 0.0, 0.0
    ends = sorted(r.end_time for r in rows if r.submit_time is not None and r.end_time is not None)
    times = [start + (last - start) * i / (_GRID - 1) for i in range(_GRID)]
    in_system = [_count_le(submits, t) - _count_le(ends, t) for t in times]
    mean_t = sum(times) / len(times)
    mean_n = sum(in_system) / len(in_system)
    spread = sum((t - mean_t) ** 2 for t in times)
    slope = sum((t - mean_t) * (n - mean_n) for t, n in zip(times, in_system, strict=True)) / spread
    arrivals = (_count_le(submits, last) - _count_le(submits, start)) / (last - start)
    return slope, arrivals


def _count_le(ordered: Sequence[float], t: float) -> int:
    return bisect.bisect_right(ordered, t)


def is_saturated(rows: Sequence[JobRow]) -> bool:
    """Whether arrivals outpaced completions: the backlog kept growing over the run."""
    slope, arrivals = backlog_growth(rows)
    submits = [r.submit_time for r in rows if r.submit_time is not None]
    if arrivals <= 0 or len(submits) < 4:
        return False
    window = (max(submits) - min(submits)) / 2
    return slope > SATURATION_GROWTH * arrivals and slope * window >= SATURATION_MIN_JOBS


def summarise(rows: Sequence[JobRow], rate_per_s: float) -> dict[str, Any]:
    """The `summary.json` object of a run offered at `rate_per_s`."""
    done = [r for r in rows if r.succeeded]
    sent = [r for r in rows if r.status != "NOT_SENT"]
    by_class: dict[str, dict[str, Any]] = {}
    for name in sorted({r.job_class for r in rows}):
        members = [r for r in done if r.job_class == name]
        by_class[name] = {
            "jobs": sum(1 for r in rows if r.job_class == name),
            "succeeded": len(members),
            "e2e_s": stats([r.e2e_s for r in members if r.e2e_s is not None]),
            "service_s": stats([r.service_s for r in members if r.service_s is not None]),
        }
    return {
        "rate_per_s": rate_per_s,
        "jobs": len(sent),
        "succeeded": len(done),
        "failed": len(sent) - len(done),
        "throughput_per_s": throughput(rows),
        "saturated": is_saturated(rows),
        "wait_s": stats([r.wait_s for r in done if r.wait_s is not None]),
        "service_s": stats([r.service_s for r in done if r.service_s is not None]),
        "e2e_s": stats([r.e2e_s for r in done if r.e2e_s is not None]),
        "client_e2e_s": stats([r.client_e2e_s for r in done if r.client_e2e_s is not None]),
        "by_class": by_class,
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")
