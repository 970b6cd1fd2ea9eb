"""Step caches are per-job options whose state never crosses from one job to another."""

from __future__ import annotations

import numpy as np
import pytest

from model.backends import create_backend
from model.backends.caches import cache_config
from model.backends.wan.backend import WanBackend
from model.engine.engine import Engine
from model.registry import TaskFamily
from model.sample_jobs import sample_job
from tests.support.specs import tiny_spec
from tests.support.stepcheck import leftover_cache_contexts, with_options

CACHES = [
    {"type": "first_block", "threshold": 0.5},
    {"type": "taylorseer", "cache_interval": 2, "disable_cache_before_step": 1},
]


@pytest.mark.parametrize("cache", CACHES, ids=lambda c: c["type"])
def test_cached_job_is_unchanged_by_other_cached_jobs(cache: dict[str, object]) -> None:
    spec = tiny_spec("wan-ti2v")
    plain = create_backend(spec)
    cached = create_backend(with_options(spec, cache=cache))
    job = sample_job(TaskFamily.T2V, 7, steps=6)
    engine = Engine()
    try:
        reference = engine.run(plain, job).frames
        alone = engine.run(cached, job).frames
        others = [sample_job(TaskFamily.T2V, s, steps=6) for s in (8, 9)]
        futures = [engine.submit(cached, j) for j in (others[0], job, others[1])]
        interleaved = futures[1].result().frames
        for f in futures:
            f.result()
    finally:
        engine.shutdown()
    assert np.abs(alone - reference).max() > 1e-3, "the cache changed nothing: it is not active"
    assert np.abs(interleaved - alone).max() < 1e-5
    assert isinstance(cached, WanBackend)
    assert leftover_cache_contexts(cached.experts) == []  # every finished job's hook state was released


def test_unknown_cache_and_uncalibrated_magcache_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown cache"):
        cache_config({"cache": {"type": "teacache"}})
    with pytest.raises(ValueError, match="mag_ratios"):
        cache_config({"cache": {"type": "magcache"}})
    assert cache_config({}) is None
