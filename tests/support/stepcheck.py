"""Checks of a backend's step API: the engine against the stock pipeline, alone and batched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from model.backends import create_backend
from model.backends.base import Backend
from model.engine.engine import Engine
from model.registry import ModelSpec
from model.step import NativeJob

TOL = 1e-4

Backends = Callable[[ModelSpec], Backend[Any]]


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of two frame arrays of the same shape."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


def run_together(backend: Backend[Any], jobs: Sequence[NativeJob]) -> tuple[list[np.ndarray], list[int]]:
    """All `jobs` through one engine, admitted at the same step boundary; their frames and the
    batch size of every forward."""
    sizes: list[int] = []
    engine = Engine(observer=lambda _name, size, _seconds: sizes.append(size))
    try:
        # Holding the engine's condition keeps the loop from admitting before the last submit.
        with engine._cond:
            futures = [engine.submit(backend, j) for j in jobs]
        return [f.result().frames for f in futures], sizes
    finally:
        engine.shutdown()


def engine_frames(backend: Backend[Any], one: NativeJob) -> np.ndarray:
    """One job alone through the engine."""
    return run_together(backend, [one])[0][0]


def assert_engine_equals_stock(backend: Backend[Any], one: NativeJob) -> float:
    """The engine's frames for `one` equal the stock pipeline's; returns the max abs diff."""
    diff = max_diff(engine_frames(backend, one), backend.generate(one).frames)
    assert diff < TOL, diff
    return diff


def assert_batch_invariant(backend: Backend[Any], target: NativeJob, others: Sequence[NativeJob]) -> float:
    """`target` batched with `others` (one forward per step for all) gives its frames alone."""
    alone = engine_frames(backend, target)
    together, sizes = run_together(backend, [target, *others])
    assert max(sizes) == 1 + len(others), sizes
    diff = max_diff(together[0], alone)
    assert diff < TOL, diff
    return diff


def with_options(spec: ModelSpec, **options: Any) -> ModelSpec:
    """`spec` with `options` merged in."""
    return replace(spec, options={**spec.options, **options})


def backend_cache() -> Backends:
    """A loader that builds each spec's backend once (for a module-scoped fixture)."""
    loaded: dict[str, Backend[Any]] = {}

    def get(spec: ModelSpec) -> Backend[Any]:
        key = repr(spec)  # specs hold an options dict: not hashable
        if key not in loaded:
            loaded[key] = create_backend(spec)
        return loaded[key]

    return get


def leftover_cache_contexts(modules: Sequence[Any]) -> list[str]:
    """Hook-state context names still held by the step-cache hooks on `modules`."""
    from diffusers.hooks.hooks import StateManager

    return [
        name
        for module in modules
        for registry in (module._diffusers_hook, *module._diffusers_hook._get_child_registries())
        for hook in registry.hooks.values()
        for attr in vars(hook).values()
        if isinstance(attr, StateManager)
        for name in attr._state_cache
    ]
