"""Calling stock diffusers pipelines: dtype names, seeded noise, the progress callback, the frames
they return. Shared by every backend family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from model.step import ProgressFn


def torch_dtype(name: str) -> torch.dtype:
    """`"bfloat16"` -> `torch.bfloat16`; rejects names that are not torch floating dtypes."""
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"unknown torch dtype {name!r}")
    return dtype


def step_callback(progress: ProgressFn | None, total: int) -> Callable[..., dict[str, Any]] | None:
    """Adapt `progress(step, total)` to diffusers' `callback_on_step_end` signature (1-based steps)."""
    if progress is None:
        return None

    def _on_step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        progress(step + 1, total)
        return tensors

    return _on_step_end


def cpu_generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator: the initial noise is then the same on every device type."""
    return torch.Generator(device="cpu").manual_seed(seed)


def frames_array(frames: Any) -> np.ndarray:
    """The first video of a pipeline's `output_type="np"` result as contiguous float32 [F, H, W, 3]."""
    video = np.asarray(frames[0], dtype=np.float32)
    return np.ascontiguousarray(np.clip(video, 0.0, 1.0))
