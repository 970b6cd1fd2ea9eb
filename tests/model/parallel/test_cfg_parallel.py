"""CFG parallel over two ranks: the cond half on rank 0, the uncond half on rank 1, all-gathered.

Also the timeout path: a rank that hangs mid-forward (SIGSTOP) fails rank 0 after the group's
collective timeout instead of blocking the engine forever.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from model.backends import create_backend
from model.backends.base import Backend
from model.parallel import ParallelGroup, ParallelGroupError
from tests.support.parallel import ENGINE_TOL, JOBS, STOCK_TOL, base_spec, engine_frames, max_diff

pytestmark = pytest.mark.slow

TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def cfg_group() -> Iterator[tuple[Backend[Any], ParallelGroup]]:
    spec = base_spec(cfg_parallel=True)
    backend = create_backend(spec)
    with ParallelGroup(spec, backend, backend_factory=create_backend, timeout=TIMEOUT_S) as group:
        yield backend, group
    assert not any(p.is_alive() for p in group.processes)


def test_cfg_parallel_equals_single_process(
    reference: dict[str, list[np.ndarray]], cfg_group: tuple[Backend[Any], ParallelGroup]
) -> None:
    backend, group = cfg_group
    assert group.layout.cfg == 2 and group.layout.ulysses == 1
    frames = engine_frames(backend, JOBS)
    assert max_diff(frames, reference["engine"]) <= ENGINE_TOL
    assert max_diff(frames, reference["stock"]) <= STOCK_TOL
    assert group.healthy()


def test_hung_rank_times_out_on_rank_zero(cfg_group: tuple[Backend[Any], ParallelGroup]) -> None:
    backend, group = cfg_group
    rank1 = group.processes[0]
    assert rank1.pid is not None
    os.kill(rank1.pid, signal.SIGSTOP)  # alive but silent: only the collective timeout can tell
    try:
        assert group.healthy()
        started = time.monotonic()
        with pytest.raises(ParallelGroupError):
            engine_frames(backend, JOBS[:1])
        assert time.monotonic() - started < TIMEOUT_S + 20
        assert not group.healthy()
    finally:
        os.kill(rank1.pid, signal.SIGKILL)
