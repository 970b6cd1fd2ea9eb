"""Backends by name, imported on demand: loading one backend never imports the others.

A backend registers itself with one line in `BACKENDS`: the name a `ModelSpec.backend` uses and
where its class lives ("module:Class"). The class subclasses `model.backends.base.Backend` and
its `name` is that same name.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from model.backends.base import Backend
from model.registry import ModelSpec

BACKENDS: dict[str, str] = {
    "wan-ti2v": "model.backends.wan.ti2v:WanTI2VBackend",
    "wan-t2v": "model.backends.wan.t2v:WanT2VBackend",
    "wan-i2v": "model.backends.wan.i2v:WanI2VBackend",
    "wan-vace": "model.backends.wan.vace:WanVACEBackend",
    "ltx2": "model.backends.ltx2.backend:LTX2Backend",
    "magihuman": "model.backends.magihuman.backend:MagiHumanBackend",
}

__all__ = ["BACKENDS", "backend_class", "create_backend", "save_tiny"]


def backend_class(name: str) -> type[Backend[Any]]:
    """The backend class registered as `name`, imported now; ValueError for an unknown name."""
    try:
        module_name, _, class_name = BACKENDS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}") from None
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Backend) and cls.name == name):
        raise TypeError(f"{BACKENDS[name]} is not the Backend subclass named {name!r}")
    return cls


def create_backend(spec: ModelSpec) -> Backend[Any]:
    """Load the backend `spec.backend` for `spec` (tiny random weights when `spec.checkpoint` is None).

    A top-level function on purpose: the parallel group hands it to ranks in other processes.
    """
    return backend_class(spec.backend)(spec)


def save_tiny(backend_name: str, folder: str | Path, seed: int = 0) -> Path:
    """Save the tiny random-weight model of `backend_name` in diffusers layout; returns `folder`.

    Point a ModelSpec's `checkpoint` at the folder to load it through the real `from_pretrained` path.
    """
    cls = backend_class(backend_name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cls.save_tiny(folder, seed)
    return folder
