"""Every Prometheus metric of the facade and the standalone workers, declared as data.

`METRICS` is the one table (name, type, help, labels, buckets); the prometheus_client objects are
built from it into a module-level `REGISTRY` (not the global default, so several apps in one
process, and tests, never clash over registrations). The facade renders it at `GET /metrics`,
a standalone worker serves it on `PADDOCK_METRICS_PORT`.

Naming follows prometheus.io/docs/practices/naming: `paddock_<thing>_<unit>`, base units
(seconds, bytes), counters end in `_total`. Labels are bounded: route templates, methods, status
codes, model names from the registry, task states, error codes and phases; never task ids or
raw paths.

Other modules record through the small functions at the bottom (`observe_step`,
`observe_job_finished`, ...), never through the objects, so the table can change shape freely.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
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
)

REGISTRY = CollectorRegistry(auto_describe=True)


def _build(spec: MetricDef) -> MetricWrapperBase:
    common = {"name": spec.name, "documentation": spec.doc, "labelnames": spec.labels, "registry": REGISTRY}
    if spec.kind == "counter":
        return Counter(**common)  # type: ignore[arg-type]
    if spec.kind == "gauge":
        return Gauge(**common)  # type: ignore[arg-type]
    return Histogram(**common, buckets=spec.buckets or Histogram.DEFAULT_BUCKETS)  # type: ignore[arg-type]


_OBJECTS: dict[str, MetricWrapperBase] = {spec.name: _build(spec) for spec in METRICS}


def _gauge(name: str) -> Gauge:
    metric = _OBJECTS[name]
    assert isinstance(metric, Gauge)
    return metric


def _counter(name: str) -> Counter:
    metric = _OBJECTS[name]
    assert isinstance(metric, Counter)
    return metric


def _histogram(name: str) -> Histogram:
    metric = _OBJECTS[name]
    assert isinstance(metric, Histogram)
    return metric


QUEUE_DEPTH = _gauge("paddock_queue_depth")
JOBS_RUNNING = _gauge("paddock_jobs_running")
WORKERS_READY = _gauge("paddock_workers_ready")
QUEUE_WAIT = _histogram("paddock_queue_wait_seconds")
STEP_DURATION = _histogram("paddock_step_duration_seconds")
BATCH_SIZE = _histogram("paddock_batch_size")
JOB_PHASE = _histogram("paddock_job_phase_seconds")
E2E = _histogram("paddock_e2e_seconds")
JOBS = _counter("paddock_jobs_total")
JOB_RETRIES = _counter("paddock_job_retries_total")
DEAD_LETTERS = _counter("paddock_dead_letters_total")
GPU_SECONDS = _counter("paddock_gpu_seconds_total")
UPLOAD_BYTES = _counter("paddock_upload_bytes_total")
BUILD_INFO = _gauge("paddock_build_info")
HTTP_REQUESTS = _counter("paddock_http_requests_total")
HTTP_DURATION = _histogram("paddock_http_request_duration_seconds")


def _version() -> str:
    try:
        return metadata.version("paddock")
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(version=_version(), python=platform.python_version()).set(1)


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


# ---------------------------------------------------------------------------------- recording


def set_queue_depth(depth: int) -> None:
    """The facade's periodic `queue.depth()` reading."""
    QUEUE_DEPTH.set(depth)


def set_worker_ready(ready: bool) -> None:
    """A worker in this process finished warming up (True) or stopped claiming (False)."""
    if ready:
        WORKERS_READY.inc()
    else:
        WORKERS_READY.dec()


@contextlib.contextmanager
def job_running() -> Iterator[None]:
    """Counts a job in `paddock_jobs_running` for the duration of the block."""
    JOBS_RUNNING.inc()
    try:
        yield
    finally:
        JOBS_RUNNING.dec()


def observe_claimed(record: TaskRecord, now: float | None = None) -> None:
    """A worker claimed `record`'s job: its queue wait (first attempt only, since a redelivered
    job's wait would include the lost attempt's running time)."""
    if record.attempt > 1:
        return
    scheduled = record.scheduled_time if record.scheduled_time is not None else (now or time.time())
    QUEUE_WAIT.observe(max(0.0, scheduled - record.submit_time))


def observe_step(model: str, batch_size: int, seconds: float) -> None:
    """One denoising step of `batch_size` jobs took `seconds` (the engine's `StepObserver`).

    `model` is whatever bounded name the engine groups by: the backend name when one batch
    mixes model names that share a backend."""
    STEP_DURATION.labels(model=model).observe(seconds)
    BATCH_SIZE.observe(batch_size)


def observe_phases(model: str, timings: Mapping[str, float], *, devices: int = 1) -> None:
    """A job's phase wall times, from `GenerationResult.timings` (`generate_s`, ...) and an
    `upload_s` the worker adds; unknown keys (`total_s`, `backend_*`) are ignored. Also counts
    `generate_s x devices` as GPU-seconds."""
    for phase in PHASES:
        seconds = timings.get(f"{phase}_s")
        if seconds is not None:
            JOB_PHASE.labels(model=model, phase=phase).observe(seconds)
    generate_s = timings.get("generate_s")
    if generate_s is not None:
        GPU_SECONDS.labels(model=model).inc(generate_s * max(1, devices))


def observe_job_finished(
    record: TaskRecord, status: str, *, code: str | None = None, now: float | None = None
) -> None:
    """A worker committed `record` as SUCCEEDED or FAILED (call only when the fenced commit won,
    so a redelivered job is counted once). SUCCEEDED also records submit→final latency."""
    status = str(status)
    JOBS.labels(model=record.model, status=status, code=code or "").inc()
    if status == "SUCCEEDED":
        end = record.end_time if record.end_time is not None else (now or time.time())
        E2E.labels(model=record.model).observe(max(0.0, end - record.submit_time))


def observe_canceled(model: str) -> None:
    """The facade canceled a PENDING task (workers never see those)."""
    JOBS.labels(model=model, status="CANCELED", code="").inc()


def observe_upload(nbytes: int) -> None:
    """A finished video of `nbytes` was stored."""
    UPLOAD_BYTES.inc(nbytes)


def record_retry() -> None:
    """The queue redelivered a job whose claim was lost."""
    JOB_RETRIES.inc()


def record_dead_letter() -> None:
    """The queue gave up on a job after too many attempts."""
    DEAD_LETTERS.inc()


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP request; `route` must be a template (`/api/v1/tasks/{task_id}`) or `unmatched`."""
    method = method if method in HTTP_METHODS else "OTHER"
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_DURATION.labels(method=method, route=route).observe(seconds)
