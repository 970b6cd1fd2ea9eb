"""Backends by name: the classes that turn a native-size job into frames with a real diffusers pipeline."""

from __future__ import annotations

from pathlib import Path

from model.backends.base import Backend, NativeClip, NativeJob
from model.backends.ltx2 import LTX2Backend
from model.backends.vace import WanVACEBackend
from model.backends.wan import WanTI2VBackend
from model.backends.wan_i2v import WanI2VBackend
from model.backends.wan_t2v import WanT2VBackend
from model.registry import ModelSpec

BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (WanTI2VBackend, WanVACEBackend, WanI2VBackend, WanT2VBackend, LTX2Backend)
}

__all__ = ["BACKENDS", "Backend", "NativeClip", "NativeJob", "backend_class", "create_backend", "save_tiny"]


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as `name`; ValueError for an unknown one."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}") from None


def create_backend(spec: ModelSpec) -> Backend:
    """Load the backend `spec.backend` for `spec` (tiny random weights when `spec.checkpoint` is None)."""
    return backend_class(spec.backend)(spec)


def save_tiny(backend_name: str, folder: str | Path, seed: int = 0) -> Path:
    """Save the tiny random-weight model of `backend_name` in diffusers layout; returns `folder`.

    Point a ModelSpec's `checkpoint` at the folder to load it through the real `from_pretrained` path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backend_class(backend_name).save_tiny(folder, seed)
    return folder
