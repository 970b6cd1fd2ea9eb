"""The worker-side paddock metrics, recorded through `ray.serve.metrics` inside Ray Serve replicas.

A replica is a Ray actor on some node: nothing scrapes its prometheus_client registry. So a
replica's `JobRunner` records into a `RayMetricsSink` instead, whose metrics Ray's per-node
metrics agent exports (KubeRay's port 8080). Names, help texts, labels and buckets come from
`server.metrics.METRICS`, the one table, so dashboards query the same series with Ray's `ray_`
prefix in front: `ray_paddock_jobs_running`, `ray_paddock_step_duration_seconds_bucket`,
`ray_paddock_jobs_total`, ... Ray adds the `deployment`, `replica` and `application` labels.

Two Ray quirks this module absorbs: a Ray Counter gets `_total` appended on export, so counters
are registered without it; and a Ray Gauge has only `set`, so `JOBS_RUNNING` keeps the count here.
Ray's histogram `_sum` is made up from bucket midpoints (notes/ray_serve.md §3.2): use quantiles
of `_bucket`, and `paddock_gpu_seconds_total` (an exact counter) for averages.

Recording semantics are `server.metrics`'s (queue wait on the first attempt only, GPU-seconds =
generate wall time x devices, e2e for SUCCEEDED only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from server.metrics import METRICS, PHASES, MetricDef

if TYPE_CHECKING:
    from server.jobs.job import TaskRecord

# The metrics a worker records (the facade's HTTP and queue-depth series stay with prometheus_client).
WORKER_METRICS = frozenset(
    {
        "paddock_jobs_running",
        "paddock_workers_ready",
        "paddock_queue_wait_seconds",
        "paddock_step_duration_seconds",
        "paddock_batch_size",
        "paddock_job_phase_seconds",
        "paddock_e2e_seconds",
        "paddock_jobs_total",
        "paddock_gpu_seconds_total",
        "paddock_upload_bytes_total",
    }
)


class RunnerMetrics(Protocol):
    """What `server.cli.build_runner` accepts: the runner's sink plus the engine's step observer."""

    JOBS_RUNNING: Any

    def set_worker_ready(self, ready: bool) -> None: ...

    def observe_claimed(self, record: TaskRecord) -> None: ...

    def observe_job_finished(self, record: TaskRecord, status: str, *, code: str | None = None) -> None: ...

    def observe_upload(self, nbytes: int) -> None: ...

    def observe_phases(self, model: str, timings: Mapping[str, float], *, devices: int = 1) -> None: ...

    def observe_step(self, model: str, batch_size: int, seconds: float) -> None: ...


def ray_metric_name(spec: MetricDef) -> str:
    """The name to register with Ray so the exported series is `ray_<spec.name>` (Ray appends
    `_total` to counters itself)."""
    if spec.kind == "counter" and spec.name.endswith("_total"):
        return spec.name[: -len("_total")]
    return spec.name


class _Count:
    """`inc()`/`dec()` over a Ray Gauge (which only has `set`): the count lives here."""

    def __init__(self, gauge: Any) -> None:
        self._gauge = gauge
        self._value = 0
        self._lock = threading.Lock()  # the engine and the event loop both record
        gauge.set(0)

    def inc(self, amount: int = 1) -> None:
        with self._lock:
            self._value += amount
            self._gauge.set(self._value)

    def dec(self, amount: int = 1) -> None:
        self.inc(-amount)

    @property
    def value(self) -> int:
        return self._value


class RayMetricsSink:
    """A `JobRunner` metrics sink (`server.worker.runner.MetricsSink`) on `ray.serve.metrics`.

    `metric_module` is for tests: anything with `Counter`, `Gauge` and `Histogram` classes of
    Ray's signatures (`name, description, [boundaries], tag_keys`)."""

    def __init__(self, metric_module: Any = None) -> None:
        if metric_module is None:
            from ray.serve import metrics as metric_module
        self._objects = {
            spec.name: _build(metric_module, spec) for spec in METRICS if spec.name in WORKER_METRICS
        }
        self.JOBS_RUNNING = _Count(self._objects["paddock_jobs_running"])
        self._ready = _Count(self._objects["paddock_workers_ready"])

    def set_worker_ready(self, ready: bool) -> None:
        """The replica's runner finished warming up (True) or stopped claiming (False)."""
        (self._ready.inc if ready else self._ready.dec)()

    def observe_claimed(self, record: TaskRecord, now: float | None = None) -> None:
        """Queue wait of a claimed job, first attempts only (a redelivery's wait includes the lost run)."""
        if record.attempt > 1:
            return
        scheduled = record.scheduled_time if record.scheduled_time is not None else (now or time.time())
        self._objects["paddock_queue_wait_seconds"].observe(max(0.0, scheduled - record.submit_time))

    def observe_step(self, model: str, batch_size: int, seconds: float) -> None:
        """One denoising step of `batch_size` jobs (the engine's `StepObserver`)."""
        self._objects["paddock_step_duration_seconds"].observe(seconds, tags={"model": model})
        self._objects["paddock_batch_size"].observe(batch_size)

    def observe_phases(self, model: str, timings: Mapping[str, float], *, devices: int = 1) -> None:
        """Phase wall times from `GenerationResult.timings` (+ `upload_s`); GPU-seconds."""
        for phase in PHASES:
            seconds = timings.get(f"{phase}_s")
            if seconds is not None:
                self._objects["paddock_job_phase_seconds"].observe(
                    seconds, tags={"model": model, "phase": phase}
                )
        generate_s = timings.get("generate_s")
        if generate_s is not None and generate_s > 0:
            gpu_seconds = generate_s * max(1, devices)
            self._objects["paddock_gpu_seconds_total"].inc(gpu_seconds, tags={"model": model})

    def observe_job_finished(
        self, record: TaskRecord, status: str, *, code: str | None = None, now: float | None = None
    ) -> None:
        """A fenced commit won: count the final state; SUCCEEDED also records e2e latency."""
        status = str(status)
        tags = {"model": record.model, "status": status, "code": code or ""}
        self._objects["paddock_jobs_total"].inc(1, tags=tags)
        if status == "SUCCEEDED":
            end = record.end_time if record.end_time is not None else (now or time.time())
            self._objects["paddock_e2e_seconds"].observe(
                max(0.0, end - record.submit_time), tags={"model": record.model}
            )

    def observe_upload(self, nbytes: int) -> None:
        """A finished video of `nbytes` was stored."""
        if nbytes > 0:  # Ray counters refuse non-positive increments
            self._objects["paddock_upload_bytes_total"].inc(nbytes)


def _build(module: Any, spec: MetricDef) -> Any:
    name, tags = ray_metric_name(spec), tuple(spec.labels)
    if spec.kind == "counter":
        return module.Counter(name, description=spec.doc, tag_keys=tags)
    if spec.kind == "gauge":
        return module.Gauge(name, description=spec.doc, tag_keys=tags)
    return module.Histogram(name, description=spec.doc, boundaries=list(spec.buckets or ()), tag_keys=tags)
