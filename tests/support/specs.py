"""Tiny specs pinned to a backend, for tests about that backend whatever the default registry
serves a name with."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from model.registry import BACKEND_DEFAULTS, HAPPYHORSE_NAMES, ModelSpec


def tiny_spec(backend: str, name: str = "happyhorse-1.0-i2v", **changes: Any) -> ModelSpec:
    """The tiny random-weight `backend` serving `name`, with the registry's defaults for that
    backend and `changes` on top."""
    spec = ModelSpec(
        name=name, family=HAPPYHORSE_NAMES[name], backend=backend, **BACKEND_DEFAULTS.get(backend, {})
    )
    return replace(spec, **changes)
