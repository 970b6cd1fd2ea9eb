"""`paddock bench engine`: the step-batching engine against the stock diffusers pipelines.

Both sides get the same jobs (mixed shapes, t2v and i2v, all arriving at once) on the same
loaded components, in one process and one run: the engine batches them; the stock pipelines run
them one after another, as a serving loop around `pipe(...)` would. Measured up to decoded
native frames (MP4 encoding is the same work on both sides). Prints videos/s, p50/p95 latency,
and as its last line `throughput ratio (engine/stock): X.XX`.

`--real-size 480p|720p` (CUDA only) times the real-size Wan 14B transformer in bf16 with random
weights instead, and prints seconds per step and MFU (notes/peers.md §2).
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
from model.registry import TaskFamily, default_registry
from model.sample_jobs import sample_job
from model.step import NativeJob

# (width, height, frames): three shapes, so some jobs batch together and some cannot.
SHAPES = ((96, 64, 25), (64, 64, 17), (64, 96, 25))


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


def make_jobs(count: int, steps: int) -> list[NativeJob]:
    """`count` jobs cycling through SHAPES and t2v/i2v, each with its own seed, prompt and image."""
    jobs = []
    for i in range(count):
        width, height, frames = SHAPES[i % len(SHAPES)]
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


def tiny_benchmark(jobs: int, steps: int, max_running_jobs: int, repeats: int) -> tuple[RunStats, RunStats]:
    spec = replace(default_registry()["happyhorse-1.0-i2v"], num_inference_steps=steps)
    backend = create_backend(spec)
    workload = make_jobs(jobs, steps)
    warm = make_jobs(len(SHAPES) * 2, steps)
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
    parser.add_argument(
        "--steps", type=int, default=40, help="denoising steps per job (real Wan: 40 i2v, 50 t2v)"
    )
    parser.add_argument("--max-running", type=int, default=16, help="engine: jobs admitted at once")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side; the fastest is reported")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads for both sides (0: torch's default)"
    )
    parser.add_argument("--real-size", choices=("480p", "720p"), help="CUDA: time the real-size Wan 14B")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.real_size:
        from benchmarks.real_size import real_size_benchmark

        return real_size_benchmark(args.real_size, steps=min(args.steps, 5))
    print(
        f"engine benchmark: {args.jobs} jobs, {args.steps} steps, shapes {SHAPES}, torch threads "
        f"{torch.get_num_threads()}",
        flush=True,
    )
    stock, engine = tiny_benchmark(args.jobs, args.steps, args.max_running, args.repeats)
    print(stock.line())
    print(engine.line())
    print(f"p50 latency ratio (engine/stock): {engine.percentile(0.5) / stock.percentile(0.5):.2f}")
    print(f"throughput ratio (engine/stock): {engine.throughput / stock.throughput:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
