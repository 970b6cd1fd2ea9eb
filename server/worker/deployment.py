"""The workers as Ray Serve replicas: `paddock ray`, or `serve run deploy/serve_config.yaml`.

Each `VideoWorker` replica is one `JobRunner` (the same class `paddock worker` runs) pulling from
the shared Redis queue: the constructor builds Settings, the queue, the object store, the model
registry and the runner, starts `runner.run()` as a task on the replica's event loop, and returns
once the models are warm, so Serve counts a replica as running only when it claims jobs. Serve
sends the replicas no requests: the queue feeds them, `server.worker.autoscaling.QueueLagPolicy`
sizes the fleet from the queue, and the replicas record metrics through `ray.serve.metrics`
(`server.worker.ray_metrics`).

Failure and shutdown:
- `check_health` raises once the runner task has ended (warm-up or the claim loop died) or a
  rank of a multi-GPU replica died; Serve then replaces the replica.
- A replica that dies hard (OOM, node loss, `ray.kill`) stops heartbeating its claims; the
  janitor in another replica's `claim` takes them over after `claim_timeout_s`.
- On a graceful stop (downscale, redeploy, `serve shutdown`) `__del__` stops claiming, gives the
  jobs in hand `shutdown_grace_s` to finish, and hands the rest back (fenced) for another replica.
  `graceful_shutdown_timeout_s` is set above that grace so Serve does not kill the drain.

Several GPUs per replica (`gpus_per_replica: N > 1`): the replica owns a STRICT_PACK placement
group of N {GPU: 1} bundles and is rank 0 (bundle 0). When a model's spec asks for N ranks
(`ulysses_degree`, `cfg_parallel`), `model.parallel.ParallelGroup` normally spawns ranks 1..N-1
as local processes; in a replica, `RayParallelGroup` starts them as `@ray.remote` actors instead
(Ray puts them in the replica's placement group, one GPU each) which run the same
`model.parallel.rank_main` and join rank 0's torch.distributed group. Each Ray process sees only
its own GPU, as `cuda:0`, so the replica rewrites such specs' devices to `cuda:0` on every rank.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray import serve
from ray.serve.config import AutoscalingConfig, AutoscalingPolicy

from model.parallel import ParallelGroup, rank_main, world_size
from server.config import Settings
from server.metrics import MetricsRecorder
from server.wiring import wire
from server.worker.factory import build_worker
from server.worker.ray_metrics import RayMetrics

if TYPE_CHECKING:
    from ray.serve import Application

    from model.parallel import BackendFactory
    from model.registry import ModelSpec
    from server.jobs.base import TaskQueue
    from server.worker.runner import JobRunner

log = logging.getLogger(__name__)

DEPLOYMENT_NAME = "VideoWorker"
APP_NAME = "paddock"
POLICY_PATH = "server.worker.autoscaling:QueueLagPolicy"
# CI and air-gapped clusters: no token file under ~/.ray, no usage report over the network.
RAY_ENV_DEFAULTS = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
# Beyond the runner's own grace: closing the engine and the queue after the drain.
SHUTDOWN_MARGIN_S = 30.0
READY_POLL_S = 0.2


# ------------------------------------------------------------------------------ the replica


@serve.deployment(
    name=DEPLOYMENT_NAME,
    ray_actor_options={"num_cpus": 1, "num_gpus": 0},
    max_ongoing_requests=8,  # only status calls arrive; jobs come from the queue
    health_check_period_s=10.0,
    health_check_timeout_s=30.0,
    graceful_shutdown_wait_loop_s=0.5,
)
class VideoWorker:
    """One worker replica: a JobRunner on the shared queue, running on the replica's loop.

    `settings` are Settings fields without the `PADDOCK_` prefix (the serve config's `args`);
    anything not given comes from the replica's environment. `gpus` is the replica's GPU count
    (`gpus_per_replica`), `rank_cpus` the CPUs each extra rank actor asks for."""

    async def __init__(  # type: ignore[misc]  # Serve awaits an async constructor
        self, settings: dict[str, Any] | None = None, gpus: int = 0, rank_cpus: float = 1.0
    ) -> None:
        self.settings = _replica_settings(settings or {})
        self.queue, runner = _build_worker(self.settings, gpus=gpus, rank_cpus=rank_cpus)
        self.runner: JobRunner = runner
        self._task = asyncio.get_running_loop().create_task(self.runner.run())
        await self._until_ready()

    async def _until_ready(self) -> None:
        # Return only once the models are loaded, so Serve's RUNNING means "claiming"; a warm-up
        # that fails raises here, and Serve retries the constructor.
        while not self.runner.ready:
            if self._task.done():
                await self.queue.close()
                self._task.result()  # raises the warm-up's error
                raise RuntimeError("the job runner stopped before it was ready")
            await asyncio.sleep(READY_POLL_S)

    def check_health(self) -> None:
        """Raise when this replica can no longer run jobs: Serve replaces it."""
        if self._task.done():
            error = None if self._task.cancelled() else self._task.exception()
            raise RuntimeError(f"the job runner stopped: {error!r}")
        if not self.runner.generator.healthy():
            raise RuntimeError("a rank of a multi-device model died")

    def status(self) -> dict[str, Any]:
        """What this replica is doing (for operators and tests: `handle.status.remote()`)."""
        return {"name": self.runner.name, "ready": self.runner.ready, "pid": os.getpid()}

    async def __del__(self) -> None:
        """Graceful stop: no new claims; jobs in hand get `shutdown_grace_s`, then are handed back."""
        self.runner.stop()
        try:
            limit = self.settings.shutdown_grace_s + SHUTDOWN_MARGIN_S
            await asyncio.wait_for(asyncio.shield(self._task), limit)
        except TimeoutError:
            self._task.cancel()
        except Exception:
            log.exception("the job runner failed while stopping")
        finally:
            await self.queue.close()


def _replica_settings(overrides: dict[str, Any]) -> Settings:
    """Settings for a replica; the consumer name defaults to the replica's id (stable in logs)."""
    settings = Settings(**overrides)
    if settings.worker_name is None:
        context = serve.get_replica_context()
        settings = settings.model_copy(update={"worker_name": f"ray-{context.replica_tag}"})
    if settings.queue_url.startswith("memory://"):
        raise ValueError("Ray replicas need a shared queue: set queue_url (PADDOCK_QUEUE_URL=redis://...)")
    return settings


def _build_worker(settings: Settings, *, gpus: int, rank_cpus: float) -> tuple[TaskQueue, JobRunner]:
    """The queue and runner, as `paddock worker` builds them (`build_worker`), with Ray metrics,
    this replica's view of the registry, and rank actors for multi-GPU models."""
    recorder = MetricsRecorder(RayMetrics())
    wiring = wire(settings, observer=recorder)
    wiring = replace(wiring, registry=ray_registry(wiring.registry, gpus=gpus))
    rank_options = {"num_gpus": 1 if gpus else 0, "num_cpus": rank_cpus}
    runner = build_worker(
        wiring, recorder, group_factory=functools.partial(RayParallelGroup, rank_options=rank_options)
    )
    return wiring.queue, runner


# --------------------------------------------------------------------- multi-GPU replicas


def ray_registry(registry: dict[str, ModelSpec], *, gpus: int) -> dict[str, ModelSpec]:
    """The registry as one replica serves it: a spec of N > 1 ranks must match the replica's
    `gpus` (or run on CPU), and each rank's device is its process's only GPU, `cuda:0`."""
    served = {}
    for name, spec in registry.items():
        world = world_size(spec)
        on_cpu = all(device.startswith("cpu") for device in spec.devices)
        if world > 1 and not on_cpu:
            if world != gpus:
                raise ValueError(f"model {name!r} needs {world} GPUs per replica; gpus_per_replica is {gpus}")
            spec = replace(spec, devices=("cuda:0",) * world)
        served[name] = spec
    return served


@ray.remote
class RankActor:
    """Ranks 1..N-1 of a replica's parallel group: `model.parallel.rank_main`, one GPU each."""

    def run(
        self,
        rank: int,
        world: int,
        init_method: str,
        spec: ModelSpec,
        backend_factory: BackendFactory,
        timeout: float,
    ) -> None:
        """Load the backend with `backend_factory`, join the group, serve forwards until rank 0
        sends STOP."""
        rank_main(rank, world, init_method, spec, backend_factory, timeout)


class _RankProcess:
    """A rank actor seen through the `multiprocessing.Process` surface `ParallelGroup` uses."""

    def __init__(self, rank: int, actor: Any, done: ray.ObjectRef[None]) -> None:
        self.name = f"paddock-rank{rank}"
        self.actor = actor
        self.done = done

    def is_alive(self) -> bool:
        ready, _ = ray.wait([self.done], timeout=0)
        return not ready

    @property
    def exitcode(self) -> int | str | None:
        if self.is_alive():
            return None
        try:
            ray.get(self.done, timeout=0)
            return 0
        except Exception as exc:
            return type(exc).__name__

    def join(self, timeout: float | None = None) -> None:
        ray.wait([self.done], timeout=timeout)

    def kill(self) -> None:
        ray.kill(self.actor, no_restart=True)


class RayParallelGroup(ParallelGroup):
    """`model.parallel.ParallelGroup` whose ranks 1..N-1 are Ray actors instead of local processes.

    Everything else (the TCPStore rendezvous, the readiness wait, the forward protocol, health,
    STOP and kill) is the parent's, through the process-like `_RankProcess`. The actors land in
    the replica's placement group (Serve sets `placement_group_capture_child_tasks`)."""

    def __init__(self, spec: ModelSpec, backend: Any, *, rank_options: dict[str, Any], **kwargs: Any) -> None:
        self.rank_options = dict(rank_options)  # Ray resources of each rank actor (set before spawning)
        super().__init__(spec, backend, **kwargs)

    def _spawn(self) -> None:
        world = self.layout.world
        for rank in range(1, world):
            actor = RankActor.options(**self.rank_options).remote()  # type: ignore[attr-defined]
            done = actor.run.remote(
                rank, world, self.init_method, self.spec, self.backend_factory, self.timeout
            )
            self.processes.append(_RankProcess(rank, actor, done))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the application


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The Serve application (the serve config's `import_path` names this builder).

    `args` (the serve config's `args`), all optional:
    - `settings`: Settings fields without the prefix (`queue_url`, `storage_url`, `data_dir`,
      `models`, `max_concurrent_jobs`, ...); the rest comes from the replicas' environment;
    - `gpus_per_replica` (0): 0 or 1 is a plain replica; N > 1 a STRICT_PACK placement group of
      N {GPU: 1, CPU: cpus_per_replica} bundles, the replica being rank 0;
    - `cpus_per_replica` (1): CPUs of the replica (and of each rank's bundle);
    - `num_replicas`: a fixed count instead of autoscaling;
    - `autoscaling`: `{min_replicas, max_replicas, initial_replicas, upscale_delay_s,
      downscale_delay_s, downscale_to_zero_delay_s, poll_interval_s, jobs_per_replica}` for
      `QueueLagPolicy` on the settings' queue (jobs_per_replica defaults to max_concurrent_jobs).
    A `deployments:` entry of the serve config overrides any of these options."""
    args = dict(args or {})
    overrides = dict(args.get("settings") or {})
    gpus = int(args.get("gpus_per_replica", 0))
    cpus = float(args.get("cpus_per_replica", 1))
    settings = Settings(**overrides)
    options: dict[str, Any] = {
        **resource_options(gpus, cpus),
        "graceful_shutdown_timeout_s": settings.shutdown_grace_s + SHUTDOWN_MARGIN_S,
    }
    if "autoscaling" in args:
        options["autoscaling_config"] = autoscaling_config(settings, dict(args["autoscaling"] or {}))
    elif "num_replicas" in args:
        options["num_replicas"] = int(args["num_replicas"])
    # serve.deployment turns the class into a Deployment, which mypy cannot see through.
    return VideoWorker.options(**options).bind(overrides, gpus, cpus)  # type: ignore[attr-defined, no-any-return]


def resource_options(gpus: int, cpus: float) -> dict[str, Any]:
    """Deployment options for a replica of `gpus` GPUs: one actor, or a STRICT_PACK group."""
    if gpus <= 1:
        return {"ray_actor_options": {"num_cpus": cpus, "num_gpus": gpus}}
    return {
        "ray_actor_options": {"num_cpus": cpus, "num_gpus": 1},  # must fit bundle 0
        "placement_group_bundles": [{"CPU": cpus, "GPU": 1} for _ in range(gpus)],
        "placement_group_strategy": "STRICT_PACK",  # one node: the ranks rendezvous on 127.0.0.1
    }


AUTOSCALING_KEYS = (
    "min_replicas",
    "max_replicas",
    "initial_replicas",
    "upscale_delay_s",
    "downscale_delay_s",
    "downscale_to_zero_delay_s",
)


def autoscaling_config(settings: Settings, spec: dict[str, Any]) -> AutoscalingConfig:
    """An AutoscalingConfig driven by `QueueLagPolicy` on `settings.queue_url`."""
    kwargs = {
        "queue_url": settings.queue_url,
        "jobs_per_replica": int(spec.get("jobs_per_replica", settings.max_concurrent_jobs)),
        "poll_interval_s": float(spec.get("poll_interval_s", 5.0)),
    }
    fields = {key: spec[key] for key in AUTOSCALING_KEYS if key in spec}
    fields.setdefault("min_replicas", 0)
    fields.setdefault("max_replicas", 1)
    policy = AutoscalingPolicy(policy_function=POLICY_PATH, policy_kwargs=kwargs)  # type: ignore[no-untyped-call]
    return AutoscalingConfig(**fields, policy=policy)


# ------------------------------------------------------------------------------ `paddock ray`


def deploy_from_cli(settings: Settings, *, config: str | None, address: str | None, blocking: bool) -> int:
    """`paddock ray`: deploy the serve config through Ray's own `serve run` (it starts a local
    cluster when no address is given, and blocks until Ctrl-C unless `blocking` is False)."""
    for name, value in RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    path = Path(config or settings.ray_config)
    if not path.is_file():
        print(f"paddock ray: no serve config at {path} (--config or PADDOCK_RAY_CONFIG)", flush=True)
        return 2
    from ray.serve.scripts import cli

    argv = ["run", str(path)]
    if address or settings.ray_address:
        argv += ["--address", str(address or settings.ray_address)]
    if not blocking:
        argv.append("--non-blocking")
    cli.main(args=argv, prog_name="serve", standalone_mode=False)
    return 0
