"""Step caches are per-job options whose state never crosses from one job to another."""

from __future__ import annotations

import numpy as np
import pytest

from model.backends import create_backend
from model.engine.caches import cache_config
from model.engine.engine import Engine
from model.registry import TaskFamily
from tests.model.engine.conftest import make_job, ti2v_spec

CACHES = [
    {"type": "first_block", "threshold": 0.5},
    {"type": "taylorseer", "cache_interval": 2, "disable_cache_before_step": 1},
]


@pytest.mark.parametrize("cache", CACHES, ids=lambda c: c["type"])
def test_cached_job_is_unchanged_by_other_cached_jobs(cache: dict) -> None:
    plain = create_backend(ti2v_spec())
    cached = create_backend(ti2v_spec(cache=cache))
    job = make_job(TaskFamily.T2V, seed=7, steps=6)
    engine = Engine()
    try:
        reference = engine.run(plain, job).frames
        alone = engine.run(cached, job).frames
        others = [make_job(TaskFamily.T2V, seed=s, steps=6) for s in (8, 9)]
        futures = [engine.submit(cached, j) for j in (others[0], job, others[1])]
        interleaved = futures[1].result().frames
        for f in futures:
            f.result()
    finally:
        engine.shutdown()
    assert np.abs(alone - reference).max() > 1e-3, "the cache changed nothing: it is not active"
    assert np.abs(interleaved - alone).max() < 1e-5
    # Every finished job's hook state was released.
    from diffusers.hooks.hooks import StateManager

    registry = cached.cache_modules()[0]._diffusers_hook
    leftovers = [
        name
        for child in (registry, *registry._get_child_registries())
        for hook in child.hooks.values()
        for attr in vars(hook).values()
        if isinstance(attr, StateManager)
        for name in attr._state_cache
    ]
    assert leftovers == []


def test_unknown_cache_and_uncalibrated_magcache_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown cache"):
        cache_config({"cache": {"type": "teacache"}})
    with pytest.raises(ValueError, match="mag_ratios"):
        cache_config({"cache": {"type": "magcache"}})
    assert cache_config({}) is None
