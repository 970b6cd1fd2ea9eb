"""`paddock bench engine` runs both sides and ends with the throughput ratio line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_engine_prints_both_sides_and_the_ratio_last() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server", "bench", "engine", "--jobs", "3", "--steps", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert any(line.startswith("stock   jobs=3") for line in lines), out
    assert any(line.startswith("engine  jobs=3") for line in lines), out
    assert re.fullmatch(r"throughput ratio \(engine/stock\): \d+\.\d\d", lines[-1]), out


def test_real_size_needs_cuda() -> None:
    import torch

    from benchmarks.real_size import real_size_benchmark

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the real-size run is a benchmark, not a test")
    assert real_size_benchmark("480p") == 2
