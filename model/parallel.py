"""Several devices, one loop: rank 0 runs the engine, every rank runs each transformer forward.

A spec with `ulysses_degree > 1` or `cfg_parallel: true` is served by a `ParallelGroup` of
`ulysses_degree * (2 if cfg_parallel else 1)` ranks (torch.distributed: gloo on CPU, nccl on CUDA):

- rank 0 is the engine's process: it builds the backend as usual and the group installs itself as
  the backend's `runner` (a `model.step.ForwardRunner`), so the backend's forwards go through `run`;
- ranks 1..N-1 run `rank_main` (spawned processes here; Ray actors can call the same function):
  they build the same backend with the factory rank 0 hands them, then wait for commands;
- per forward, rank 0 broadcasts a command and the inputs' metadata (`broadcast_object_list`),
  then each tensor (`broadcast`); every rank calls its transformer, which diffusers' context
  parallel plan (Ulysses) shards over the sequence and gathers again at `proj_out`; a module
  with its own Ulysses (`UlyssesModule`, MagiHuman's packed transformer) is handed the group
  instead, and shards any token count itself;
- CFG parallel splits the batch (cond half, uncond half: `guided_forward`'s order) across the
  rank groups of a ("cfg", "ring", "ulysses") device mesh and all-gathers the halves.

Limits: one group per process (diffusers builds its mesh on the default process group); only
Ulysses (ring attention needs an LSE-returning attention backend, which CPU/gloo lacks); the token
count of one sample must divide by `ulysses_degree` for diffusers' plan (gloo cannot all-gather
uneven shards; a `UlyssesModule` takes any count); a `UlyssesModule` takes no CFG parallel.
"""

from __future__ import annotations

import logging
import multiprocessing.process
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from model.registry import ModelSpec

if TYPE_CHECKING:
    from model.backends.base import Backend

log = logging.getLogger(__name__)

FORWARD = "forward"
STOP = "stop"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_STARTUP_TIMEOUT_S = 900.0
READY_KEY = "paddock/ready"

# Builds the backend of a spec on each rank: a top-level function (`model.backends.create_backend`),
# so it pickles by reference for spawned processes and Ray actors.
BackendFactory = Callable[[ModelSpec], "Backend[Any]"]


@runtime_checkable
class UlyssesModule(Protocol):
    """A transformer entry that implements Ulysses itself: every rank calls it with the whole
    batch, it shards the sequence over `group` and returns the whole output on every rank."""

    def enable_ulysses(self, group: Any) -> None: ...


class ParallelGroupError(RuntimeError):
    """A rank died, a collective timed out or failed: the group is unusable; replace the worker."""


@dataclass(frozen=True)
class Layout:
    """Rank r is Ulysses rank `r % ulysses` of CFG group `r // ulysses`."""

    ulysses: int
    cfg: int

    @property
    def world(self) -> int:
        return self.ulysses * self.cfg


def layout_of(spec: ModelSpec) -> Layout:
    """The spec's parallel layout; ValueError for a degree below 1."""
    if spec.ulysses_degree < 1:
        raise ValueError(f"model {spec.name!r}: ulysses_degree must be >= 1, got {spec.ulysses_degree}")
    return Layout(ulysses=spec.ulysses_degree, cfg=2 if spec.cfg_parallel else 1)


def world_size(spec: ModelSpec) -> int:
    """How many ranks serve `spec`; 1 means no group."""
    return layout_of(spec).world


def rank_device(spec: ModelSpec, rank: int) -> torch.device:
    """Rank `rank`'s device: `spec.devices[rank]`, or the one CPU device shared by every rank."""
    world = world_size(spec)
    if len(spec.devices) == world:
        return torch.device(spec.devices[rank])
    if len(spec.devices) == 1 and torch.device(spec.devices[0]).type == "cpu":
        return torch.device("cpu")
    raise ValueError(f"model {spec.name!r}: {world} ranks need {world} devices, got {list(spec.devices)}")


def check_tokens(transformer: Any, hidden_states: torch.Tensor, ulysses: int) -> None:
    """ValueError unless one sample's transformer tokens divide by the Ulysses degree."""
    pt, ph, pw = transformer.config.patch_size
    frames, height, width = hidden_states.shape[-3:]
    tokens = (frames // pt) * (height // ph) * (width // pw)
    if tokens % ulysses:
        raise ValueError(
            f"{tokens} transformer tokens per sample ({frames // pt} x {height // ph} x {width // pw}) "
            f"do not divide by ulysses_degree={ulysses}; choose a native size and frame count whose "
            "token grid does"
        )


@contextmanager
def _cpu_device_count() -> Iterator[None]:
    # diffusers' `_resolve_parallel_config` computes `rank % torch.accelerator.device_count()`,
    # which divides by zero on CPU-only torch; pretend to one device while the mesh is built.
    if torch.accelerator.device_count() > 0:
        yield
        return
    original = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original


def _transformers(backend: Backend[Any]) -> list[Any]:
    """The backend's transformers in a fixed order (the same on every rank: same construction):
    those of its diffusers pipelines, and its own `UlyssesModule` entries."""
    from diffusers import DiffusionPipeline

    found: list[Any] = []
    for value in vars(backend).values():
        if isinstance(value, UlyssesModule):
            found.append(value)
        if not isinstance(value, DiffusionPipeline):
            continue
        for name in ("transformer", "transformer_2"):
            module = getattr(value, name, None)
            if module is not None and all(module is not seen for seen in found):
                found.append(module)
    return found


def init_distributed(rank: int, world: int, device: torch.device, timeout: float, store: Any) -> None:
    """Join the process group (nccl for CUDA devices, else gloo) through rank 0's TCPStore;
    collectives time out after `timeout`."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        store=store,
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=timeout),
    )


def _store_address(init_method: str) -> tuple[str, int]:
    url = urlparse(init_method)
    if url.scheme != "tcp" or url.hostname is None or url.port is None:
        raise ValueError(f"init_method must be tcp://HOST:PORT, got {init_method!r}")
    return url.hostname, url.port


class _Member:
    """One rank's share of the work, the same code on rank 0 and on the other ranks."""

    def __init__(self, spec: ModelSpec, backend: Backend[Any], rank: int) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        self.layout = layout_of(spec)
        self.device = rank_device(spec, rank)
        self.modules = _transformers(backend)
        # every rank builds the same mesh (its groups are collectives over all ranks)
        mesh = init_device_mesh(
            self.device.type,
            (self.layout.cfg, 1, self.layout.ulysses),
            mesh_dim_names=("cfg", "ring", "ulysses"),
        )
        self.cfg_rank = rank // self.layout.ulysses
        self.cfg_group = mesh.get_group("cfg") if self.layout.cfg > 1 else None
        if self.layout.ulysses > 1:
            self._enable_context_parallel(spec, mesh)

    def _enable_context_parallel(self, spec: ModelSpec, mesh: Any) -> None:
        from diffusers import ContextParallelConfig

        for module in self.modules:
            if isinstance(module, UlyssesModule):
                module.enable_ulysses(mesh.get_group("ulysses"))
                continue
            heads = module.config.num_attention_heads
            if heads % self.layout.ulysses:
                raise ValueError(
                    f"{heads} attention heads do not divide by ulysses_degree={self.layout.ulysses}"
                )
            if "attention_backend" in spec.options:
                module.set_attention_backend(str(spec.options["attention_backend"]))
            with _cpu_device_count():
                module.enable_parallelism(
                    config=ContextParallelConfig(ulysses_degree=self.layout.ulysses, mesh=mesh)
                )

    def compute(self, transformer: Any, inputs: dict[str, Any]) -> torch.Tensor:
        """This rank's part of the forward; every rank returns the whole batch's output."""
        cfg = self.layout.cfg
        if cfg == 1 or inputs["hidden_states"].shape[0] % cfg:
            # nothing to split (an unguided odd batch): every CFG group runs it all, alike
            return transformer(**inputs, return_dict=False)[0]
        part = {k: v.chunk(cfg)[self.cfg_rank] if torch.is_tensor(v) else v for k, v in inputs.items()}
        out = transformer(**part, return_dict=False)[0].contiguous()
        halves = [torch.empty_like(out) for _ in range(cfg)]
        dist.all_gather(halves, out, group=self.cfg_group)
        return torch.cat(halves)

    def receive(self) -> tuple[str, int, dict[str, Any]]:
        """(command, transformer index, inputs) as rank 0 sent them with `_send`."""
        box: list[Any] = [None]
        dist.broadcast_object_list(box, src=0)
        command, index, meta = box[0]
        inputs: dict[str, Any] = {}
        for name, is_tensor, payload in meta:
            if not is_tensor:
                inputs[name] = payload
                continue
            shape, dtype = payload
            inputs[name] = torch.empty(shape, dtype=dtype, device=self.device)
            dist.broadcast(inputs[name], src=0)
        return command, index, inputs

    def serve(self) -> None:
        """Ranks 1..N-1: run forwards until STOP."""
        while True:
            command, index, inputs = self.receive()
            if command == STOP:
                return
            with torch.inference_mode():
                self.compute(self.modules[index], inputs)


def _send(command: str, index: int = -1, inputs: dict[str, Any] | None = None) -> None:
    """Rank 0: the command and the inputs' metadata (shapes first), then each tensor."""
    inputs = inputs or {}
    meta = [
        (k, True, (tuple(v.shape), v.dtype)) if torch.is_tensor(v) else (k, False, v)
        for k, v in inputs.items()
    ]
    dist.broadcast_object_list([(command, index, meta)], src=0)
    for value in inputs.values():
        if torch.is_tensor(value):
            dist.broadcast(value.contiguous(), src=0)


def rank_main(
    rank: int,
    world: int,
    init_method: str,
    spec: ModelSpec,
    backend_factory: BackendFactory,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Entry point of ranks 1..N-1 (a spawned process or a Ray actor): build the backend on this
    rank's device with `backend_factory`, join the group, serve forwards until rank 0 sends STOP."""
    if "threads" in spec.options:
        torch.set_num_threads(int(spec.options["threads"]))
    device = rank_device(spec, rank)
    # load before joining: the group's timeout then covers collectives, not checkpoint loading
    backend = backend_factory(replace(spec, devices=(str(device),)))
    host, port = _store_address(init_method)
    store = dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=timeout))
    # tells rank 0 this rank has loaded: rank 0 only then starts the group's timed rendezvous
    store.set(f"{READY_KEY}/{rank}", "1")
    init_distributed(rank, world, device, timeout, store)
    try:
        _Member(spec, backend, rank).serve()
    finally:
        dist.destroy_process_group()


class ParallelGroup:
    """Rank 0 of a group serving `spec`: spawns ranks 1..N-1 and becomes `backend.runner`.

    `backend` is rank 0's already-built backend; `backend_factory` builds the same on the other
    ranks (`model.backends.create_backend`). Startup blocks until every rank has loaded
    (bounded by `startup_timeout`; a rank that dies meanwhile raises at once) and joined; each
    collective after that is bounded by `timeout`. Use `close()` (or `with`) to stop the ranks.
    """

    def __init__(
        self,
        spec: ModelSpec,
        backend: Backend[Any],
        *,
        backend_factory: BackendFactory,
        timeout: float = DEFAULT_TIMEOUT_S,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
        host: str = "127.0.0.1",
    ) -> None:
        self.spec = spec
        self.backend_factory = backend_factory
        self.layout = layout_of(spec)
        self.timeout = timeout
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._closed = False
        if dist.is_initialized():
            raise RuntimeError("a process group already exists in this process: one ParallelGroup each")
        if backend.cache is not None:
            # the step cache decides per rank whether to skip blocks: the ranks' collectives would diverge
            raise ValueError(f"model {spec.name!r}: step caching cannot be combined with a parallel group")
        # port 0: the store binds a free port itself (no race with another process picking it)
        store = dist.TCPStore(
            host, 0, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=timeout)
        )
        self.init_method = f"tcp://{host}:{store.port}"
        try:
            self._spawn()
            self._wait_ready(store, startup_timeout)
            init_distributed(0, self.layout.world, rank_device(spec, 0), timeout, store)
            self._member = _Member(spec, backend, 0)
        except BaseException:
            self._kill()
            if dist.is_initialized():
                dist.destroy_process_group()
            raise
        backend.runner = self
        log.info("parallel group up: %s, %d ranks (%s)", spec.name, self.layout.world, self.init_method)

    def _spawn(self) -> None:
        ctx = mp.get_context("spawn")
        for rank in range(1, self.layout.world):
            args = (rank, self.layout.world, self.init_method, self.spec, self.backend_factory, self.timeout)
            process = ctx.Process(target=rank_main, args=args, name=f"paddock-rank{rank}", daemon=True)
            process.start()
            self.processes.append(process)

    def _wait_ready(self, store: Any, startup_timeout: float) -> None:
        keys = [f"{READY_KEY}/{rank}" for rank in range(1, self.layout.world)]
        deadline = time.monotonic() + startup_timeout
        while not store.check(keys):
            dead = [f"{p.name} (exit {p.exitcode})" for p in self.processes if not p.is_alive()]
            if dead:
                raise ParallelGroupError(f"ranks died while loading: {', '.join(dead)}")
            if time.monotonic() > deadline:
                raise ParallelGroupError(f"ranks not loaded after {startup_timeout:.0f} s")
            time.sleep(0.1)

    def __enter__(self) -> ParallelGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        """Whether every rank is alive and no collective has failed (Ray's `check_health`)."""
        return not self._closed and self._error is None and all(p.is_alive() for p in self.processes)

    def run(self, transformer: Any, **inputs: Any) -> torch.Tensor:
        """The forward on every rank; ValueError (group intact) for a token count the Ulysses degree
        does not divide; ParallelGroupError once a rank has died or a collective failed."""
        if not isinstance(transformer, UlyssesModule):
            check_tokens(transformer, inputs["hidden_states"], self.layout.ulysses)
        index = next((i for i, m in enumerate(self._member.modules) if m is transformer), None)
        if index is None:
            raise ValueError("this transformer is not one of the group's backend's transformers")
        with self._lock:
            self._ensure_usable()
            try:
                _send(FORWARD, index, inputs)
                return self._member.compute(transformer, inputs)
            except Exception as exc:
                # the ranks' collectives are out of step now: the group cannot be used again
                self._error = exc
                raise ParallelGroupError(f"parallel forward failed: {exc}") from exc

    def _ensure_usable(self) -> None:
        if self._closed:
            raise ParallelGroupError("the parallel group is closed")
        if self._error is not None:
            raise ParallelGroupError(f"the parallel group failed earlier: {self._error}")
        dead = [p.name for p in self.processes if not p.is_alive()]
        if dead:
            self._error = ParallelGroupError(f"ranks died: {dead}")
            raise self._error

    def close(self, timeout: float = 30.0) -> None:
        """Send STOP and join the ranks if the group still works; kill what is left; leave the group."""
        with self._lock:
            if self._closed:
                return
            if self.healthy():
                self._stop(timeout)
            self._closed = True
            # a broken group's ranks may be hung in a collective: no point waiting for them
            self._kill()
            if dist.is_initialized():
                dist.destroy_process_group()

    def _stop(self, timeout: float) -> None:
        try:
            _send(STOP)
        except Exception:
            log.exception("could not send STOP to the ranks")
            return
        for process in self.processes:
            process.join(timeout)

    def _kill(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join(5.0)
