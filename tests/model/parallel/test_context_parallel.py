"""Ulysses context parallel over two ranks, built by the VideoGenerator from a spec.

The same jobs through the engine with a 2-rank group give the single-process frames; a token
count the degree does not divide fails the job, not the group; a killed rank fails rank 0 fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from model.backends.base import Backend
from model.generator import VideoGenerator
from model.parallel import ParallelGroup, ParallelGroupError
from model.registry import TaskFamily
from tests.support.parallel import (
    ENGINE_TOL,
    JOBS,
    NAME,
    STOCK_TOL,
    base_spec,
    engine_frames,
    make_job,
    max_diff,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ulysses() -> Iterator[tuple[VideoGenerator, Backend[Any], ParallelGroup]]:
    generator = VideoGenerator({NAME: base_spec(ulysses_degree=2)})
    try:
        backend = generator.backend(NAME)  # world size 2: the generator starts the group
        group = backend.runner
        assert isinstance(group, ParallelGroup)
        yield generator, backend, group
    finally:
        generator.close()
    assert not group.healthy() and not any(p.is_alive() for p in group.processes)


def test_two_rank_ulysses_equals_single_process(
    reference: dict[str, list[np.ndarray]], ulysses: tuple[VideoGenerator, Backend[Any], ParallelGroup]
) -> None:
    generator, backend, group = ulysses
    assert group.healthy() and group.layout.world == 2
    frames = engine_frames(backend, JOBS, generator.engine)  # t2v and i2v share each forward
    assert max_diff(frames, reference["engine"]) <= ENGINE_TOL
    assert max_diff(frames, reference["stock"]) <= STOCK_TOL


def test_indivisible_token_count_fails_the_job_not_the_group(
    ulysses: tuple[VideoGenerator, Backend[Any], ParallelGroup],
) -> None:
    generator, backend, group = ulysses
    # 32x32, 1 frame: one token per sample cannot be split over two ranks
    odd = generator.engine.submit(backend, make_job(TaskFamily.T2V, 3, width=32, height=32, frames=1))
    with pytest.raises(ValueError, match="ulysses_degree=2"):
        odd.result(timeout=60)
    assert group.healthy()


def test_killed_rank_fails_rank_zero_instead_of_hanging(
    ulysses: tuple[VideoGenerator, Backend[Any], ParallelGroup],
) -> None:
    generator, backend, group = ulysses
    group.processes[0].kill()
    group.processes[0].join(10)
    assert not group.healthy()
    started = time.monotonic()
    with pytest.raises(ParallelGroupError, match="died"):
        engine_frames(backend, JOBS[:1], generator.engine)
    assert time.monotonic() - started < 10
