"""`paddock bench engine` runs both sides and ends with the throughput ratio line."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["wan-ti2v", "magihuman"])
def test_bench_engine_prints_both_sides_and_the_ratio_last(backend: str) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "bench",
            "engine",
            "--backend",
            backend,
            "--jobs",
            "3",
            "--steps",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith(f"engine benchmark: {backend}"), out
    assert any(line.startswith("stock   jobs=3") for line in lines), out
    assert any(line.startswith("engine  jobs=3") for line in lines), out
    assert re.fullmatch(r"throughput ratio \(engine/stock\): \d+\.\d\d", lines[-1]), out


def test_real_size_needs_cuda() -> None:
    import torch

    from benchmarks.magihuman_real_size import magihuman_real_size
    from benchmarks.real_size import real_size_benchmark

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the real-size run is a benchmark, not a test")
    assert real_size_benchmark("480p") == 2
    assert magihuman_real_size("1080p") == 2


@pytest.mark.parametrize("local", [False, True], ids=["full", "frame-local"])
def test_magihuman_real_size_counts_the_flops_the_forward_runs(
    local: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real-size run's code path on a toy config on the CPU: its FLOP count equals what torch
    counts for the matmuls and what the attention calls compute, frame-local windows included."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks import magihuman_real_size as bench
    from model.backends.magihuman import attention
    from model.backends.magihuman.config import tiny_config

    config = tiny_config(local_attention=local, text_in_channels=32)
    model = bench.random_transformer(config, torch.device("cpu"), torch.float32)
    toy = bench.RealSize("toy", (5, 4, 6), "v1", 1, 1.0, "toy")
    batch = bench.build_batch(toy, 32, torch.device("cpu"), clips=2)  # two clips packed, as the packed run
    batch = replace(batch, frame_receptive_field=1)
    pairs: list[int] = []
    sdpa = F.scaled_dot_product_attention

    def counted(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: object) -> torch.Tensor:
        pairs.append(q.shape[-3] * q.shape[-2] * k.shape[-2])  # heads x queries x keys
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", counted)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(batch)
    assert bench.projection_flops(config, batch) == counter.get_total_flops()
    assert bench.attention_flops(config, batch) == 4 * config.head_dim * sum(pairs)
    assert bench.time_steps(model, batch, 1, lambda: None) > 0
