"""`RayMetrics`: the `MetricsBackend` of Ray Serve replicas, on `ray.serve.metrics`.

A replica is a Ray actor on some node: nothing scrapes a prometheus_client registry there. Its
`MetricsRecorder` (the same recording rules as everywhere, `server.metrics`) writes into this
backend instead, whose metrics Ray's per-node agent exports (KubeRay's port 8080). Names, help
texts, labels and buckets come from `server.metrics.METRICS`, so dashboards query the same series
with Ray's `ray_` prefix: `ray_paddock_jobs_running`, `ray_paddock_step_duration_seconds_bucket`,
`ray_paddock_jobs_total`, ... Ray adds the `deployment`, `replica` and `application` labels.

Ray quirks absorbed here: a Ray Counter gets `_total` appended on export, so counters are
registered without it, and refuses non-positive increments. Ray's histogram `_sum` is made up
from bucket midpoints (notes/ray_serve.md §3.2): use quantiles of `_bucket`, and
`paddock_gpu_seconds_total` (an exact counter) for averages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.metrics import METRICS, MetricDef

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
        "paddock_job_retries_total",
        "paddock_dead_letters_total",
        "paddock_gpu_seconds_total",
        "paddock_upload_bytes_total",
    }
)


def ray_metric_name(spec: MetricDef) -> str:
    """The name to register with Ray so the exported series is `ray_<spec.name>` (Ray appends
    `_total` to counters itself)."""
    if spec.kind == "counter" and spec.name.endswith("_total"):
        return spec.name[: -len("_total")]
    return spec.name


class RayMetrics:
    """A `MetricsBackend` for the worker metrics, on `ray.serve.metrics` (or, for tests, any module
    with `Counter`, `Gauge` and `Histogram` classes of Ray's signatures)."""

    def __init__(self, metric_module: Any = None) -> None:
        if metric_module is None:
            from ray.serve import metrics as metric_module
        self.objects = {
            spec.name: _build(metric_module, spec) for spec in METRICS if spec.name in WORKER_METRICS
        }

    def inc(self, name: str, amount: float, labels: Mapping[str, str]) -> None:
        if amount > 0:
            self.objects[name].inc(amount, tags=dict(labels))

    def set(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self.objects[name].set(value, tags=dict(labels))

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self.objects[name].observe(value, tags=dict(labels))


def _build(module: Any, spec: MetricDef) -> Any:
    name, tags = ray_metric_name(spec), tuple(spec.labels)
    if spec.kind == "counter":
        return module.Counter(name, description=spec.doc, tag_keys=tags)
    if spec.kind == "gauge":
        return module.Gauge(name, description=spec.doc, tag_keys=tags)
    return module.Histogram(name, description=spec.doc, boundaries=list(spec.buckets or ()), tag_keys=tags)
