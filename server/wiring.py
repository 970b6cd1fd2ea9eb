"""What every paddock process builds from Settings, in one place: the task queue, the object
store with the URL signer, and the model registry. The facade (`server.api.app`), `paddock
worker` and Ray replicas (`server.worker`) all start here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.registry import ModelSpec, load_registry
from server.config import Settings
from server.jobs import queue_from_settings
from server.signing import Signer, load_or_create_secret
from server.storage import make_object_store

if TYPE_CHECKING:
    from server.jobs.base import QueueObserver, TaskQueue
    from server.storage.base import ObjectStore


@dataclass(frozen=True)
class Wiring:
    """The shared parts of a process: who holds the tasks, where media and results live, which
    models exist, and the signer of URLs and upload policies."""

    settings: Settings
    queue: TaskQueue
    store: ObjectStore
    registry: dict[str, ModelSpec]
    signer: Signer


def wire(
    settings: Settings,
    *,
    observer: QueueObserver | None = None,
    queue: TaskQueue | None = None,
    store: ObjectStore | None = None,
    registry: dict[str, ModelSpec] | None = None,
) -> Wiring:
    """Build what `settings` name; parts passed in are used as they are (tests, embedding).
    `observer` hears the queue's retries and dead letters (a `MetricsRecorder`)."""
    signer = Signer(load_or_create_secret(settings))
    return Wiring(
        settings=settings,
        queue=queue if queue is not None else queue_from_settings(settings, observer=observer),
        store=store if store is not None else make_object_store(settings, signer),
        registry=registry if registry is not None else load_registry(settings.models),
        signer=signer,
    )
