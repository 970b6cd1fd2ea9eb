"""The analytic screen: a bottleneck bound for capacity, then M/G/c waits (Erlang C with the
Allen–Cunneen correction) with c = workers x slots.

It is a cross-check of the simulation, not the answer: it treats each slot as a server of one
fixed speed, while paddock's slots share cores and batch steps, so its waits are rough near
saturation. Worked example (ray_serve.md §6.2): S = 70 s, λ = 2/min, c = 4 gives ρ = 0.58,
P(wait) = 0.27, W_q = 11 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.plan.calibration import ClassCalibration, Variant


@dataclass(frozen=True)
class QueueStats:
    """M/G/c at c servers, arrival rate λ (per second), mean service S, squared CV of service cs2."""

    servers: int
    service_s: float
    arrival_per_s: float
    cs2: float
    rho: float
    p_wait: float
    wq_s: float  # mean wait: M/M/c scaled by (c_a² + c_s²) / 2 with Poisson arrivals (c_a² = 1)
    p95_wq_s: float  # 95th percentile of the wait, same scaling

    @property
    def stable(self) -> bool:
        return self.rho < 1.0


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


def mgc(service_s: float, arrival_per_s: float, servers: int, cs2: float = 1.0) -> QueueStats:
    """The queue at `servers` servers; waits are infinite when ρ ≥ 1."""
    if service_s <= 0 or arrival_per_s < 0:
        raise ValueError("service time must be positive and the arrival rate non-negative")
    a = arrival_per_s * service_s
    rho = a / servers
    if rho >= 1.0:
        return QueueStats(servers, service_s, arrival_per_s, cs2, rho, 1.0, math.inf, math.inf)
    p_wait = erlang_c(servers, a)
    factor = (1.0 + cs2) / 2.0
    drain = servers / service_s - arrival_per_s  # cμ − λ, per second
    # M/M/c: P(W_q > t) = C·exp(−(cμ − λ)t), so the 95th percentile is ln(C/0.05)/(cμ − λ).
    p95 = math.log(p_wait / 0.05) / drain if p_wait > 0.05 else 0.0
    return QueueStats(
        servers, service_s, arrival_per_s, cs2, rho, p_wait, p_wait / drain * factor, p95 * factor
    )


def _host_work(work: ClassCalibration, batch: int, device_on_host: bool) -> float:
    own = work.pre_s + work.post_s
    return own + _device_work(work, batch) if device_on_host else own


def _device_work(work: ClassCalibration, batch: int) -> float:
    """Device-seconds one job costs when its steps run in full batches of `batch`."""
    return work.steps * work.step_time(batch) / batch + work.vae_s


def _mix_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def bottleneck_rate(variant: Variant, names: Sequence[str], weights: Sequence[float], slots: int) -> float:
    """Jobs per second one worker can finish at most: the tightest of its slots (each job holds
    one for its whole service), its host cores and its device, with steps in full batches."""
    works = [variant.classes[n] for n in names]
    batch = max(1, slots)
    alone = _mix_mean([w.alone_s for w in works], weights)
    host = _mix_mean(
        [_host_work(w, min(batch, w.max_batch or batch), variant.device_on_host) for w in works], weights
    )
    limits = [slots / alone, variant.host_parallelism / host if host > 0 else math.inf]
    if not variant.device_on_host:
        device = _mix_mean([_device_work(w, min(batch, w.max_batch or batch)) for w in works], weights)
        limits.append(1.0 / device if device > 0 else math.inf)
    return min(limits)


def screen(
    variant: Variant, names: Sequence[str], weights: Sequence[float], rate: float, workers: int, slots: int
) -> dict[str, Any]:
    """The analytic block of a prediction."""
    works = [variant.classes[n] for n in names]
    alone = [w.alone_s for w in works]
    mean = _mix_mean(alone, weights)
    cs2 = _mix_mean([(a - mean) ** 2 for a in alone], weights) / mean**2 if mean > 0 else 0.0
    max_rate = workers * bottleneck_rate(variant, names, weights, slots)
    servers = workers * slots
    full_service = servers / max_rate  # at capacity every slot is busy: Little's law
    q = mgc(full_service, rate, servers, cs2)
    # A slot's service stretches from `mean` (alone) to `full_service` (all busy) with the load.
    service = mean + min(q.rho, 1.0) * (full_service - mean)
    tail = max(alone) / mean if mean > 0 else 1.0
    return {
        "servers": servers,
        "service_s": service,
        "cs2": cs2,
        "utilisation": q.rho,
        "max_rate_per_s": max_rate,
        "saturated": not q.stable,
        "p_wait": q.p_wait,
        "wait_s": {"mean": q.wq_s, "p95": q.p95_wq_s},
        "e2e_s": {"mean": q.wq_s + service, "p95": q.p95_wq_s + service * tail},
    }
