"""`build_worker`: the one composition root of a worker, as arq keeps its worker factory beside
the worker. `paddock serve` (in-process), `paddock worker` and Ray replicas all build theirs here,
so a setting means the same thing wherever the worker runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.generator import VideoGenerator
from server.jobs.janitor import heartbeat_interval
from server.worker.runner import JobRunner

if TYPE_CHECKING:
    from model.generator import GroupFactory
    from server.metrics import MetricsRecorder
    from server.wiring import Wiring


def build_worker(
    wiring: Wiring, recorder: MetricsRecorder, *, group_factory: GroupFactory | None = None
) -> JobRunner:
    """A JobRunner over a VideoGenerator (and its engine) for the wiring's registry, recording into
    `recorder` (the engine's step times too). `group_factory` starts the extra ranks of
    multi-device models (default: local processes; Ray replicas start Ray actors)."""
    settings = wiring.settings
    generator = VideoGenerator(
        wiring.registry,
        max_running_jobs=max(16, settings.max_concurrent_jobs),
        step_observer=recorder.observe_step,
        **({} if group_factory is None else {"group_factory": group_factory}),
    )
    return JobRunner(
        wiring.queue,
        wiring.store,
        generator,
        task_ttl_s=settings.task_ttl_s,
        task_timeout_s=settings.task_timeout_s,
        name=settings.worker_name,
        max_concurrent_jobs=settings.max_concurrent_jobs,
        heartbeat_s=heartbeat_interval(settings.claim_timeout_s),
        shutdown_grace_s=settings.shutdown_grace_s,
        metrics=recorder,
    )
