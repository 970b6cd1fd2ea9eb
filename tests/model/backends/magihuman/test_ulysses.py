"""Ulysses context parallelism of the packed transformer: two gloo ranks against one process.

Rank 0 is the pytest process; rank 1 is spawned by the `VideoGenerator`'s `ParallelGroup`. Jobs
of different sizes, guided (their unguided copies in the same packed sequence), whose packed
row counts do not split evenly over the two ranks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from model.backends import create_backend
from model.backends.base import Backend
from model.backends.magihuman.backend import MagiHumanBackend
from model.backends.magihuman.ulysses import UlyssesGroup, split_sizes
from model.generator import VideoGenerator
from model.parallel import ParallelGroup
from model.registry import TaskFamily
from model.step import NativeClip
from tests.support.magihuman import clip_diff, clips_together, magihuman_spec, make_job

NAME = "happyhorse-1.0-t2v"
SPEC = magihuman_spec(variant="base", threads=1)  # one torch thread per rank: two cores
JOBS = [make_job(1), make_job(2, TaskFamily.I2V, width=96, frames=5, prompt="hooves on gravel")]


def test_rows_split_as_evenly_as_possible_the_first_ranks_taking_the_rest() -> None:
    assert (
        split_sizes(7, 2) == [4, 3]
        and split_sizes(9, 4) == [3, 2, 2, 2]
        and split_sizes(2, 4) == [1, 1, 0, 0]
    )


def test_heads_must_split_over_the_ranks() -> None:
    UlyssesGroup(None, 0, 4).check_heads(40, 8)
    UlyssesGroup(None, 0, 16).check_heads(32, 8)  # each key/value head repeated onto two ranks
    with pytest.raises(ValueError, match="4 attention heads do not divide by ulysses_degree=3"):
        UlyssesGroup(None, 0, 3).check_heads(4, 2)
    with pytest.raises(ValueError, match="3 key/value heads"):
        UlyssesGroup(None, 0, 2).check_heads(6, 3)


@pytest.fixture(scope="module")
def single_process() -> list[NativeClip]:
    backend = create_backend(SPEC)
    clips, sizes = clips_together(backend, JOBS)
    assert sizes == [2, 2, 2]  # both jobs, both copies, in one forward a step
    rows = sum(backend.prepare(job).cost for job in JOBS)
    assert rows % 2 == 1, rows  # an odd packed sequence: the shards are uneven
    return clips


@pytest.fixture(scope="module")
def ulysses() -> Iterator[tuple[VideoGenerator, Backend[Any]]]:
    generator = VideoGenerator({NAME: replace(SPEC, ulysses_degree=2)})
    try:
        backend = generator.backend(NAME)  # world size 2: the generator starts the group
        assert isinstance(backend.runner, ParallelGroup) and backend.runner.layout.world == 2
        yield generator, backend
    finally:
        generator.close()


@pytest.mark.slow
def test_two_ranks_make_the_single_process_clips(
    single_process: list[NativeClip], ulysses: tuple[VideoGenerator, Backend[Any]]
) -> None:
    generator, backend = ulysses
    assert isinstance(backend, MagiHumanBackend)
    sharded = backend.base_entry.transformer.ulysses
    assert sharded is not None and (sharded.rank, sharded.world) == (0, 2)  # rank 0 runs half the rows
    futures = [generator.engine.submit(backend, job) for job in JOBS]
    clips = [future.result(timeout=120) for future in futures]
    # Float tolerance: reductions split differently across ranks and OpenMP threads (seen: 3.5e-6).
    assert max(clip_diff(a, b) for a, b in zip(clips, single_process, strict=True)) <= 1e-4
