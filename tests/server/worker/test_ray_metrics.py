"""RayMetrics without Ray: the names, labels and buckets of server/metrics.py's table, and the
one MetricsRecorder's rules landing in Ray's metric objects as the runner relies on."""

from __future__ import annotations

from typing import Any

from server.jobs.job import JobSpec, TaskRecord
from server.metrics import METRICS, MetricsRecorder
from server.worker.ray_metrics import WORKER_METRICS, RayMetrics, ray_metric_name


class FakeMetric:
    def __init__(self, name: str, description: str = "", boundaries: Any = None, tag_keys: Any = ()) -> None:
        self.name, self.description, self.boundaries, self.tag_keys = name, description, boundaries, tag_keys
        self.calls: list[tuple[str, float, dict[str, str]]] = []

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("inc", value, tags or {}))

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("set", value, tags or {}))

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("observe", value, tags or {}))


class FakeModule:
    Counter = Gauge = Histogram = FakeMetric


def _make_record(**changes: Any) -> TaskRecord:
    spec = JobSpec(
        model="happyhorse-1.0-t2v",
        family="t2v",
        prompt="a horse",
        width=64,
        height=64,
        duration_s=1.0,
        seed=1,
        watermark=False,
        resolution="720P",
        ratio="1:1",
    )
    values: dict[str, Any] = {"submit_time": 100.0, "attempt": 1, **changes}
    return TaskRecord(task_id="t1", request_id="r1", tenant="a", model=spec.model, spec=spec, **values)


def recorder() -> tuple[MetricsRecorder, dict[str, FakeMetric]]:
    backend = RayMetrics(FakeModule)
    return MetricsRecorder(backend), backend.objects


def test_every_worker_metric_keeps_its_name_labels_and_buckets() -> None:
    _, objects = recorder()
    table = {spec.name: spec for spec in METRICS}
    assert set(objects) == WORKER_METRICS
    for name, metric in objects.items():
        spec = table[name]
        # Ray exports `ray_<name>`, appending `_total` to counters itself.
        exported = metric.name + ("_total" if spec.kind == "counter" else "")
        assert exported == name == spec.name
        assert ray_metric_name(spec) == metric.name
        assert tuple(metric.tag_keys) == spec.labels
        if spec.kind == "histogram":
            assert tuple(metric.boundaries) == spec.buckets


def test_running_jobs_and_ready_workers_count_up_and_down() -> None:
    metrics, objects = recorder()
    with metrics.job_running(), metrics.job_running():
        pass
    metrics.worker_ready(True)
    running = objects["paddock_jobs_running"].calls
    assert [value for _, value, _ in running] == [1, 2, 1, 0]  # Ray gauges only set: counted here
    assert objects["paddock_workers_ready"].calls[-1][1] == 1


def test_job_recording_follows_server_metrics() -> None:
    from server.jobs.job import TaskStatus

    sink, objects = recorder()
    first = _make_record(scheduled_time=103.0, end_time=110.0)
    sink.observe_claimed(first)
    sink.observe_claimed(_make_record(attempt=2, scheduled_time=200.0))  # a redelivery: no wait
    assert objects["paddock_queue_wait_seconds"].calls == [("observe", 3.0, {})]

    sink.observe_step("wan-ti2v", 3, 0.25)
    assert objects["paddock_step_duration_seconds"].calls == [("observe", 0.25, {"model": "wan-ti2v"})]
    assert objects["paddock_batch_size"].calls == [("observe", 3, {})]

    sink.observe_phases("m", {"generate_s": 2.0, "upload_s": 0.5, "total_s": 9.0}, devices=4)
    phases = objects["paddock_job_phase_seconds"].calls
    assert [(tags["phase"], value) for _, value, tags in phases] == [("generate", 2.0), ("upload", 0.5)]
    assert objects["paddock_gpu_seconds_total"].calls == [("inc", 8.0, {"model": "m"})]

    sink.observe_job_finished(first, TaskStatus.SUCCEEDED)
    sink.observe_job_finished(first, TaskStatus.FAILED, code="InternalError.Algo")
    jobs = objects["paddock_jobs_total"].calls
    assert [tags for _, _, tags in jobs] == [
        {"model": first.model, "status": "SUCCEEDED", "code": ""},
        {"model": first.model, "status": "FAILED", "code": "InternalError.Algo"},
    ]
    assert objects["paddock_e2e_seconds"].calls == [("observe", 10.0, {"model": first.model})]

    sink.observe_upload(0)  # Ray counters refuse non-positive increments
    sink.observe_upload(1234)
    sink.job_retried()
    sink.job_dead_lettered()
    assert objects["paddock_job_retries_total"].calls == [("inc", 1, {})]
    assert objects["paddock_dead_letters_total"].calls == [("inc", 1, {})]
    assert objects["paddock_upload_bytes_total"].calls == [("inc", 1234, {})]
