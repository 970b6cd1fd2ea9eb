"""`paddock bench facade` on a real redis-server: both sides measured, the ratio line last."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.facade_bench import parse_output

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.redis
def test_bench_facade_measures_both_sides_and_prints_the_ratio_last() -> None:
    args = ["--tasks", "300", "--seconds", "1", "--rounds", "1", "--concurrency", "8"]
    out = subprocess.run(
        [sys.executable, "-m", "server", "bench", "facade", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    submit = next(line for line in lines if line.startswith("submit  paddock"))
    assert "requests=300 " in submit and "failed=0" in submit
    for side in ("query   paddock", "query   baseline"):
        line = next(line for line in lines if line.startswith(side))
        assert "failed=0" in line and re.search(r"server-cpu=\d+\.\d+ms/req", line), line
    assert re.fullmatch(r"query throughput ratio \(paddock/baseline\): \d+\.\d\d", lines[-1]), out
    query, submits = parse_output(out)
    assert query > 0 and submits > 0


def test_parse_output_refuses_other_text() -> None:
    with pytest.raises(ValueError, match="paddock bench facade"):
        parse_output("throughput ratio (engine/stock): 2.42")
