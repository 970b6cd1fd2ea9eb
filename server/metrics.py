"""Every paddock metric, declared once as data, and the one set of rules that records them.

- `METRICS` is the table (name, type, help, labels, buckets).
- `MetricsRecorder` holds the recording rules (what is counted when, with which labels: queue
  wait on first attempts only, GPU-seconds = generate wall time x devices, e2e for SUCCEEDED
  only, ...), written once, over a `MetricsBackend`:
  - `PrometheusMetrics`, prometheus_client objects built from the table in a registry of their
    own (the facade renders it at `GET /metrics`, a standalone worker on `PADDOCK_METRICS_PORT`);
  - `server.worker.ray_metrics.RayMetrics`, `ray.serve.metrics` inside Ray replicas.
- The queue records retries and dead letters through the recorder (`job_retried`,
  `job_dead_lettered`: it is the queue's `QueueObserver`), where it reclaims and poisons jobs.

Naming follows prometheus.io/docs/practices/naming: `paddock_<thing>_<unit>`, base units
(seconds, bytes), counters end in `_total`. Labels are bounded: route templates, methods, status
codes, model names from the registry, task states, error codes and phases; never task ids or
raw paths.
"""

from __future__ import annotations

import contextlib
import platform
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

if TYPE_CHECKING:
    from server.jobs.job import TaskRecord

MetricKind = Literal["counter", "gauge", "histogram"]

# Jobs run for seconds (tiny CPU models) to hours (14B models at 1080P; the task limit is 3 h).
JOB_SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)
# A phase can be milliseconds (watermark) or most of the job (generate).
PHASE_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800)
# One denoising step: milliseconds on the tiny models, tens of seconds for a big batch at 1080P.
STEP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120)
# HTTP: most calls are milliseconds; create can fetch media for up to the 30 s fetch timeout.
HTTP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
# A webhook POST: a receiver answers in milliseconds, or the attempt times out (10 s by default).
WEBHOOK_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# What became of one webhook delivery attempt.
WEBHOOK_OUTCOMES = frozenset({"delivered", "retry", "dead", "refused", "gone"})

# The phases a job's time is split into (`GenerationResult.timings` keys without `_s`, + upload).
PHASES = ("load", "decode", "generate", "resample", "watermark", "audio", "encode", "upload")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class MetricDef:
    """One metric: what Prometheus sees. `buckets` only for histograms."""

    name: str
    kind: MetricKind
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


METRICS: tuple[MetricDef, ...] = (
    # -- queue and workers
    MetricDef("paddock_queue_depth", "gauge", "Jobs waiting to be claimed (take max() across facades)."),
    MetricDef("paddock_jobs_running", "gauge", "Jobs this process is running now."),
    MetricDef("paddock_workers_ready", "gauge", "Workers in this process that are warmed up and claiming."),
    MetricDef(
        "paddock_queue_wait_seconds",
        "histogram",
        "Submit to first claim (scheduled_time - submit_time).",
        buckets=JOB_SECONDS_BUCKETS,
    ),
    # -- jobs
    MetricDef(
        "paddock_step_duration_seconds",
        "histogram",
        "Wall time of one denoising step (one batched transformer pass).",
        ("model",),
        STEP_SECONDS_BUCKETS,
    ),
    MetricDef(
        "paddock_batch_size",
        "histogram",
        "Jobs sharing one denoising step.",
        buckets=BATCH_SIZE_BUCKETS,
    ),
    MetricDef(
        "paddock_job_phase_seconds",
        "histogram",
        "Wall time of each phase of a job.",
        ("model", "phase"),
        PHASE_SECONDS_BUCKETS,
    ),
    MetricDef(
        "paddock_e2e_seconds",
        "histogram",
        "Submit to SUCCEEDED, for tasks that succeeded.",
        ("model",),
        JOB_SECONDS_BUCKETS,
    ),
    MetricDef(
        "paddock_jobs_total",
        "counter",
        "Tasks that reached a final state; code is empty for SUCCEEDED and CANCELED.",
        ("model", "status", "code"),
    ),
    MetricDef("paddock_job_retries_total", "counter", "Jobs redelivered to a worker after a lost claim."),
    MetricDef("paddock_dead_letters_total", "counter", "Jobs failed for good after too many attempts."),
    MetricDef(
        "paddock_gpu_seconds_total",
        "counter",
        "Device-seconds spent generating (generate wall time x devices), exact; per job, so jobs "
        "sharing a batch each count their full wall time.",
        ("model",),
    ),
    MetricDef(
        "paddock_upload_bytes_total", "counter", "Bytes of finished videos written to the object store."
    ),
    # -- process
    MetricDef("paddock_build_info", "gauge", "Always 1; the labels carry the build.", ("version", "python")),
    # -- HTTP facade
    MetricDef(
        "paddock_http_requests_total",
        "counter",
        "HTTP requests by route template and status code.",
        ("method", "route", "status"),
    ),
    MetricDef(
        "paddock_http_request_duration_seconds",
        "histogram",
        "HTTP request latency by route template.",
        ("method", "route"),
        HTTP_SECONDS_BUCKETS,
    ),
    # -- webhooks
    MetricDef(
        "paddock_webhook_deliveries_total",
        "counter",
        "Webhook delivery attempts by outcome: delivered, retry (failed, tried again later), dead "
        "(failed for the last time), refused (the address guard), gone (the task was deleted).",
        ("outcome",),
    ),
    MetricDef(
        "paddock_webhook_delivery_duration_seconds",
        "histogram",
        "Wall time of one webhook POST, answered or not.",
        buckets=WEBHOOK_SECONDS_BUCKETS,
    ),
)


class MetricsBackend(Protocol):
    """Where recorded values go. `name` is a `METRICS` name; `labels` its label values."""

    def inc(self, name: str, amount: float, labels: Mapping[str, str]) -> None:
        """Add `amount` (> 0) to a counter."""

    def set(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        """Set a gauge."""

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        """Add an observation to a histogram."""


class PrometheusMetrics:
    """prometheus_client objects for the whole table, in their own registry (several apps in one
    process, and tests, never clash over registrations)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._objects = {spec.name: self._build(spec) for spec in METRICS}
        self._children: dict[tuple[str, ...], MetricWrapperBase] = {}
        self.set("paddock_build_info", 1, {"version": _version(), "python": platform.python_version()})

    def _build(self, spec: MetricDef) -> MetricWrapperBase:
        common = {"name": spec.name, "documentation": spec.doc, "labelnames": spec.labels}
        if spec.kind == "counter":
            return Counter(**common, registry=self.registry)  # type: ignore[arg-type]
        if spec.kind == "gauge":
            return Gauge(**common, registry=self.registry)  # type: ignore[arg-type]
        return Histogram(**common, registry=self.registry, buckets=spec.buckets or ())  # type: ignore[arg-type]

    def _child(self, name: str, labels: Mapping[str, str]) -> MetricWrapperBase:
        # Labels are bounded (module docstring), so the children are too: keep them rather than
        # resolve them with `labels()` on every request.
        key = (name, *labels.values())
        child = self._children.get(key)
        if child is None:
            metric = self._objects[name]
            child = self._children[key] = metric.labels(**labels) if labels else metric
        return child

    def inc(self, name: str, amount: float, labels: Mapping[str, str]) -> None:
        self._child(name, labels).inc(amount)  # type: ignore[attr-defined]

    def set(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self._child(name, labels).set(value)  # type: ignore[attr-defined]

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self._child(name, labels).observe(value)  # type: ignore[attr-defined]

    def exposition(self) -> bytes:
        """The Prometheus text format of everything recorded so far."""
        return generate_latest(self.registry)


def _version() -> str:
    try:
        return metadata.version("paddock")
    except metadata.PackageNotFoundError:
        return "unknown"


def series_names() -> frozenset[str]:
    """Every series name paddock can expose (`_bucket/_sum/_count` of histograms, counters with
    `_total`), whether or not it has been observed yet: what dashboards and alerts may query."""
    names: set[str] = set()
    for spec in METRICS:
        if spec.kind == "histogram":
            names.update(f"{spec.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(spec.name)
    return frozenset(names)


_NO_LABELS: Mapping[str, str] = {}


class MetricsRecorder:
    """The recording rules, once, over any `MetricsBackend`. Thread-safe: the engine's threads
    and the event loop both record."""

    def __init__(self, backend: MetricsBackend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._running = 0
        self._ready = 0

    @classmethod
    def prometheus(cls) -> MetricsRecorder:
        """A recorder on a fresh `PrometheusMetrics`."""
        return cls(PrometheusMetrics())

    # -- queue and workers ------------------------------------------------------------------------
    def set_queue_depth(self, depth: int) -> None:
        """The facade's periodic `queue.depth()` reading."""
        self.backend.set("paddock_queue_depth", depth, _NO_LABELS)

    def worker_ready(self, ready: bool) -> None:
        """A worker in this process finished warming up (True) or stopped claiming (False)."""
        with self._lock:
            self._ready += 1 if ready else -1
            self.backend.set("paddock_workers_ready", self._ready, _NO_LABELS)

    @contextlib.contextmanager
    def job_running(self) -> Iterator[None]:
        """Counts a job in `paddock_jobs_running` for the duration of the block."""
        self._add_running(1)
        try:
            yield
        finally:
            self._add_running(-1)

    def _add_running(self, delta: int) -> None:
        with self._lock:
            self._running += delta
            self.backend.set("paddock_jobs_running", self._running, _NO_LABELS)

    def job_retried(self) -> None:
        """The queue gave a job whose worker died its next attempt (`QueueObserver`)."""
        self.backend.inc("paddock_job_retries_total", 1, _NO_LABELS)

    def job_dead_lettered(self) -> None:
        """The queue failed a job for good after too many lost attempts (`QueueObserver`)."""
        self.backend.inc("paddock_dead_letters_total", 1, _NO_LABELS)

    # -- jobs -------------------------------------------------------------------------------------
    def observe_claimed(self, record: TaskRecord, now: float | None = None) -> None:
        """A worker claimed `record`'s job: its queue wait (first attempt only, since a redelivered
        job's wait would include the lost attempt's running time)."""
        if record.attempt > 1:
            return
        scheduled = record.scheduled_time if record.scheduled_time is not None else (now or time.time())
        self.backend.observe(
            "paddock_queue_wait_seconds", max(0.0, scheduled - record.submit_time), _NO_LABELS
        )

    def observe_step(self, model: str, batch_size: int, seconds: float) -> None:
        """One denoising step of `batch_size` jobs took `seconds` (the engine's `StepObserver`).

        `model` is whatever bounded name the engine groups by: the backend name when one batch
        mixes model names that share a backend."""
        self.backend.observe("paddock_step_duration_seconds", seconds, {"model": model})
        self.backend.observe("paddock_batch_size", batch_size, _NO_LABELS)

    def observe_phases(self, model: str, timings: Mapping[str, float], *, devices: int = 1) -> None:
        """A job's phase wall times, from `GenerationResult.timings` (`generate_s`, ...) and an
        `upload_s` the worker adds; unknown keys (`total_s`, `backend_*`) are ignored. Also counts
        `generate_s x devices` as GPU-seconds."""
        for phase in PHASES:
            seconds = timings.get(f"{phase}_s")
            if seconds is not None:
                self.backend.observe("paddock_job_phase_seconds", seconds, {"model": model, "phase": phase})
        generate_s = timings.get("generate_s")
        if generate_s:
            self.backend.inc("paddock_gpu_seconds_total", generate_s * max(1, devices), {"model": model})

    def observe_job_finished(
        self, record: TaskRecord, status: str, *, code: str | None = None, now: float | None = None
    ) -> None:
        """A worker committed `record` as SUCCEEDED or FAILED (call only when the fenced commit won,
        so a redelivered job is counted once). SUCCEEDED also records submit→final latency."""
        status = str(status)
        self.backend.inc(
            "paddock_jobs_total", 1, {"model": record.model, "status": status, "code": code or ""}
        )
        if status == "SUCCEEDED":
            end = record.end_time if record.end_time is not None else (now or time.time())
            self.backend.observe(
                "paddock_e2e_seconds", max(0.0, end - record.submit_time), {"model": record.model}
            )

    def observe_canceled(self, model: str) -> None:
        """The facade canceled a PENDING task (workers never see those)."""
        self.backend.inc("paddock_jobs_total", 1, {"model": model, "status": "CANCELED", "code": ""})

    def observe_upload(self, nbytes: int) -> None:
        """A finished video of `nbytes` was stored."""
        if nbytes > 0:
            self.backend.inc("paddock_upload_bytes_total", nbytes, _NO_LABELS)

    # -- HTTP -------------------------------------------------------------------------------------
    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request; `route` must be a template (`/api/v1/tasks/{task_id}`) or `unmatched`."""
        method = method if method in HTTP_METHODS else "OTHER"
        self.backend.inc(
            "paddock_http_requests_total", 1, {"method": method, "route": route, "status": str(status)}
        )
        self.backend.observe(
            "paddock_http_request_duration_seconds", seconds, {"method": method, "route": route}
        )

    # -- webhooks ---------------------------------------------------------------------------------
    def observe_webhook(self, outcome: str, seconds: float | None = None) -> None:
        """One webhook delivery attempt and, when a POST was made, how long it took."""
        if outcome not in WEBHOOK_OUTCOMES:
            raise ValueError(f"unknown webhook outcome {outcome!r}")
        self.backend.inc("paddock_webhook_deliveries_total", 1, {"outcome": outcome})
        if seconds is not None:
            self.backend.observe("paddock_webhook_delivery_duration_seconds", seconds, _NO_LABELS)
