"""Capacity planning for GPU video workers: Little's law, Erlang C (M/M/c) and the M/D/c correction.

    python -m loadtests.capacity --service-s 70 --gpus-per-replica 4 --rate 2 --slo-s 90

S is the service time of one job on one replica (or GPU-seconds per video / GPUs per replica), λ
the arrival rate, c the replicas. Offered load a = λS, utilisation ρ = a/c, the throughput bound
λ_max = c/S, P(wait) = C(c, a) and W_q = C·S/(c − a). Video service times are nearly constant, so
the Allen–Cunneen factor (1 + Cs²)/2 scales the waits (Cs² = 0: M/D/c, about half). Notes:
shared/notes/ray_serve.md §6.2; this module is pure Python and imports nothing from paddock.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

SLO_METRICS = ("mean_w", "p95_w", "mean_wq", "p95_wq")


@dataclass(frozen=True)
class QueueStats:
    """One row of the capacity table: c replicas under arrival rate λ (per second), service time S."""

    replicas: int
    service_s: float
    arrival_per_s: float
    cs2: float
    rho: float
    p_wait: float
    wq_mmc_s: float  # mean queue wait, M/M/c (exponential service)
    wq_s: float  # mean queue wait scaled by (1 + Cs²)/2
    p95_wq_s: float  # 95th percentile of the queue wait, same scaling

    @property
    def stable(self) -> bool:
        return self.rho < 1.0

    @property
    def w_s(self) -> float:
        """Mean time in system W = W_q + S."""
        return self.wq_s + self.service_s

    @property
    def p95_w_s(self) -> float:
        """Approximate 95th percentile of time in system (service is nearly constant)."""
        return self.p95_wq_s + self.service_s

    @property
    def in_system(self) -> float:
        """Little's law: mean jobs in the system L = λ·W."""
        return self.arrival_per_s * self.w_s

    @property
    def max_per_min(self) -> float:
        """Throughput bound λ_max = c/S at batch 1, in jobs per minute."""
        return 60.0 * self.replicas / self.service_s

    def metric(self, name: str) -> float:
        """The value an SLO on `name` (one of SLO_METRICS) is checked against, in seconds."""
        return {"mean_w": self.w_s, "p95_w": self.p95_w_s, "mean_wq": self.wq_s, "p95_wq": self.p95_wq_s}[
            name
        ]


def erlang_c(c: int, a: float) -> float:
    """P(wait) for c servers at offered load a (Erlangs); 1.0 when a ≥ c (the queue grows).

    Uses the Erlang B recursion B(k) = a·B(k−1) / (k + a·B(k−1)), stable for large c, then
    C = c·B / (c − a·(1 − B)).
    """
    if c < 1:
        raise ValueError("c must be at least 1")
    if a < 0:
        raise ValueError("offered load must be non-negative")
    if a >= c:
        return 1.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def analyse(service_s: float, arrival_per_s: float, replicas: int, cs2: float = 1.0) -> QueueStats:
    """The queue at `replicas` servers; waits are infinite when ρ ≥ 1."""
    if service_s <= 0 or arrival_per_s < 0:
        raise ValueError("service time must be positive and the arrival rate non-negative")
    a = arrival_per_s * service_s
    rho = a / replicas
    p_wait = erlang_c(replicas, a)
    factor = (1.0 + cs2) / 2.0
    if rho >= 1.0:
        inf = math.inf
        return QueueStats(replicas, service_s, arrival_per_s, cs2, rho, 1.0, inf, inf, inf)
    drain = replicas / service_s - arrival_per_s  # cμ − λ, per second
    wq_mmc = p_wait / drain
    # M/M/c: P(W_q > t) = C·exp(−(cμ − λ)t), so the 95th percentile is ln(C/0.05)/(cμ − λ).
    p95 = math.log(p_wait / 0.05) / drain if p_wait > 0.05 else 0.0
    return QueueStats(
        replicas, service_s, arrival_per_s, cs2, rho, p_wait, wq_mmc, wq_mmc * factor, p95 * factor
    )


def recommend(
    service_s: float,
    arrival_per_s: float,
    slo_s: float,
    metric: str = "mean_w",
    cs2: float = 1.0,
    max_replicas: int = 1000,
) -> QueueStats | None:
    """The fewest replicas whose `metric` meets `slo_s`, or None within `max_replicas`."""
    if metric not in SLO_METRICS:
        raise ValueError(f"metric must be one of {SLO_METRICS}")
    first = max(1, math.floor(arrival_per_s * service_s) + 1)
    for c in range(first, max_replicas + 1):
        stats = analyse(service_s, arrival_per_s, c, cs2)
        if stats.metric(metric) <= slo_s:
            return stats
    return None


def _seconds(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.0f} s"


def format_table(rows: Sequence[QueueStats], gpus_per_replica: int) -> str:
    """A plain-text table in the shape of ray_serve.md §6.2's worked example."""
    header = (
        f"{'c':>3} {'GPUs':>5} {'ρ':>5} {'P(wait)':>8} {'W_q M/M/c':>10} {'W_q':>8} "
        f"{'W = W_q+S':>10} {'p95 W':>8} {'L = λW':>7} {'λ_max/min':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.replicas:>3} {r.replicas * gpus_per_replica:>5} {r.rho:>5.2f} {r.p_wait:>8.2f} "
            f"{_seconds(r.wq_mmc_s):>10} {_seconds(r.wq_s):>8} {_seconds(r.w_s):>10} "
            f"{_seconds(r.p95_w_s):>8} {r.in_system:>7.2f} {r.max_per_min:>10.2f}"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtests.capacity", description=__doc__.split("\n\n")[0])
    time_group = p.add_mutually_exclusive_group(required=True)
    time_group.add_argument("--service-s", type=float, help="service time S of one job on one replica, s")
    time_group.add_argument("--gpu-seconds", type=float, help="measured GPU-seconds per video (S × GPUs)")
    p.add_argument("--gpus-per-replica", type=int, default=1, help="GPUs one replica spans")
    p.add_argument("--rate", type=float, required=True, help="arrival rate λ, jobs per minute")
    p.add_argument("--slo-s", type=float, help="target for --slo-metric, seconds")
    p.add_argument("--slo-metric", choices=SLO_METRICS, default="mean_w", help="what the SLO bounds")
    p.add_argument("--cs2", type=float, default=1.0, help="squared CV of service time (1: M/M/c, 0: M/D/c)")
    p.add_argument("--replicas", type=int, nargs="*", help="rows to print (default: around the answer)")
    return p


def _rows_to_show(args: argparse.Namespace, a: float, best: QueueStats | None) -> list[int]:
    if args.replicas:
        return sorted(set(args.replicas))
    first = max(1, math.floor(a) + 1)
    last = max(first + 2, (best.replicas + 1) if best else first + 2)
    return list(range(first, last + 1))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.gpus_per_replica < 1 or args.rate < 0:
        print("--gpus-per-replica must be ≥ 1 and --rate ≥ 0", file=sys.stderr)
        return 2
    service_s = args.service_s if args.service_s is not None else args.gpu_seconds / args.gpus_per_replica
    lam = args.rate / 60.0
    a = lam * service_s
    best = recommend(service_s, lam, args.slo_s, args.slo_metric, args.cs2) if args.slo_s else None
    print(
        f"S = {service_s:g} s ({service_s * args.gpus_per_replica:g} GPU-s per video on "
        f"{args.gpus_per_replica} GPU(s)), λ = {args.rate:g}/min, a = λS = {a:.2f}, Cs² = {args.cs2:g} "
        f"(waits × {(1 + args.cs2) / 2:g})"
    )
    rows = [analyse(service_s, lam, c, args.cs2) for c in _rows_to_show(args, a, best)]
    print(format_table(rows, args.gpus_per_replica))
    if args.slo_s is None:
        return 0
    if best is None:
        print(f"no replica count up to 1000 meets {args.slo_metric} ≤ {args.slo_s:g} s")
        return 1
    print(
        f"recommend c = {best.replicas} ({best.replicas * args.gpus_per_replica} GPUs): "
        f"{args.slo_metric} = {best.metric(args.slo_metric):.0f} s ≤ {args.slo_s:g} s at ρ = {best.rho:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
