"""`paddock bench engine`: the step-batching engine against the stock diffusers pipelines.

Both sides get the same jobs (mixed shapes, t2v and i2v, all arriving at once) on the same
loaded components, in one process and one run: the engine batches them; the stock pipelines run
them one after another, as a serving loop around `pipe(...)` would. Measured up to decoded
native frames (MP4 encoding is the same work on both sides). Prints videos/s, p50/p95 latency,
and as its last line `throughput ratio (engine/stock): X.XX`.

`--backend magihuman` runs the tiny daVinci-MagiHuman model instead of the tiny Wan 2.2 TI2V:
jobs of four lengths and three sizes, whose steps share packed forwards; its "stock" side is the
backend's one-job reference loop (`_generate`), its decoded frames include the sound.

`--real-size` (CUDA only) times a real-size transformer in bf16 with random weights instead and
prints seconds per step and MFU: Wan 14B at 480p|720p (notes/peers.md §2), or with
`--backend magihuman` the released 15B MagiHuman at its 256p base and 1080p SR sizes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from model.backends import create_backend
from model.backends.base import Backend
from model.engine.engine import Engine
from model.registry import BACKEND_DEFAULTS, ModelSpec, TaskFamily
from model.sample_jobs import sample_job
from model.step import NativeJob

# (width, height, frames) per backend. Wan: three shapes, so some jobs batch together and some
# cannot. MagiHuman: every job shares every forward whatever its shape, so lengths vary too
# (1 to 4 s at 8 fps).
SHAPES = {
    "wan-ti2v": ((96, 64, 25), (64, 64, 17), (64, 96, 25)),
    "magihuman": ((96, 64, 25), (64, 64, 9), (64, 96, 33), (64, 64, 17)),
}
DEFAULT_STEPS = {"wan-ti2v": 40, "magihuman": 8}  # Wan i2v's 40; MagiHuman's distilled 8
REAL_SIZES = {"wan-ti2v": ("480p", "720p"), "magihuman": ("256p", "1080p")}


@dataclass
class RunStats:
    name: str
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def line(self) -> str:
        return (
            f"{self.name:<7} jobs={len(self.latencies):<3} wall={self.seconds:7.3f}s "
            f"throughput={self.throughput:7.3f} videos/s p50={self.percentile(0.5):7.3f}s "
            f"p95={self.percentile(0.95):7.3f}s"
        )


def make_jobs(count: int, steps: int, backend: str = "wan-ti2v") -> list[NativeJob]:
    """`count` jobs cycling through the backend's SHAPES and t2v/i2v, each with its own seed,
    prompt and image."""
    shapes = SHAPES[backend]
    jobs = []
    for i in range(count):
        width, height, frames = shapes[i % len(shapes)]
        family = TaskFamily.I2V if i % 2 else TaskFamily.T2V
        jobs.append(sample_job(family, i, width=width, height=height, frames=frames, steps=steps))
    return jobs


def run_stock(backend: Backend[Any], jobs: Sequence[NativeJob]) -> RunStats:
    started = time.perf_counter()
    latencies = []
    for job in jobs:
        backend.generate(job)
        latencies.append(time.perf_counter() - started)  # every job arrived at `started`
    return RunStats("stock", time.perf_counter() - started, latencies)


def run_engine(backend: Backend[Any], jobs: Sequence[NativeJob], max_running_jobs: int) -> RunStats:
    engine = Engine(max_running_jobs=max_running_jobs)
    try:
        started = time.perf_counter()
        done: list[float] = []
        futures = [engine.submit(backend, job) for job in jobs]
        for future in futures:
            future.add_done_callback(lambda _f: done.append(time.perf_counter() - started))
        for future in futures:
            future.result()
        return RunStats("engine", time.perf_counter() - started, done)
    finally:
        engine.shutdown()


def bench_spec(backend: str, steps: int, variant: str = "distill") -> ModelSpec:
    """The tiny `backend` as the default registry serves it, with `steps` steps (and for
    MagiHuman the `variant`: the distilled DiT, or the base one with CFG)."""
    spec = ModelSpec(
        name="happyhorse-1.0-i2v", family=TaskFamily.I2V, backend=backend, **BACKEND_DEFAULTS.get(backend, {})
    )
    options = {"variant": variant} if backend == "magihuman" else {}
    return replace(spec, num_inference_steps=steps, options=options)


def tiny_benchmark(
    jobs: int, steps: int, max_running_jobs: int, repeats: int, spec: ModelSpec
) -> tuple[RunStats, RunStats]:
    backend = create_backend(spec)
    workload = make_jobs(jobs, steps, spec.backend)
    warm = make_jobs(len(SHAPES[spec.backend]) * 2, steps, spec.backend)
    run_stock(backend, warm)
    run_engine(backend, warm, max_running_jobs)
    best: dict[str, RunStats] = {}
    for _ in range(repeats):
        for stats in (run_stock(backend, workload), run_engine(backend, workload, max_running_jobs)):
            if stats.name not in best or stats.seconds < best[stats.name].seconds:
                best[stats.name] = stats
    return best["stock"], best["engine"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paddock bench engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=16, help="concurrent jobs (mixed shapes)")
    parser.add_argument("--backend", choices=sorted(SHAPES), default="wan-ti2v", help="the tiny model to run")
    parser.add_argument(
        "--variant", choices=("distill", "base"), default="distill", help="magihuman: which DiT (base: CFG)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="denoising steps per job (default: Wan 40, as real Wan i2v; MagiHuman 8, its distilled DiT's)",
    )
    parser.add_argument("--max-running", type=int, default=16, help="engine: jobs admitted at once")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side; the fastest is reported")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads for both sides (0: torch's default)"
    )
    parser.add_argument(
        "--real-size",
        choices=sorted({size for sizes in REAL_SIZES.values() for size in sizes}),
        help="CUDA: time the real-size transformer (Wan 14B: 480p|720p; MagiHuman 15B: 256p|1080p)",
    )
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or DEFAULT_STEPS[args.backend]
    if args.real_size:
        if args.real_size not in REAL_SIZES[args.backend]:
            parser.error(f"--real-size for {args.backend}: one of {REAL_SIZES[args.backend]}")
        if args.backend == "magihuman":
            from benchmarks.magihuman_real_size import magihuman_real_size

            return magihuman_real_size(args.real_size, steps=min(steps, 5))
        from benchmarks.real_size import real_size_benchmark

        return real_size_benchmark(args.real_size, steps=min(steps, 5))
    spec = bench_spec(args.backend, steps, args.variant)
    print(
        f"engine benchmark: {args.backend} {spec.options or ''} {args.jobs} jobs, {steps} steps, "
        f"shapes {SHAPES[args.backend]}, torch threads {torch.get_num_threads()}",
        flush=True,
    )
    stock, engine = tiny_benchmark(args.jobs, steps, args.max_running, args.repeats, spec)
    print(stock.line())
    print(engine.line())
    print(f"p50 latency ratio (engine/stock): {engine.percentile(0.5) / stock.percentile(0.5):.2f}")
    print(f"throughput ratio (engine/stock): {engine.throughput / stock.throughput:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
