"""The model catalogue: which backend serves each DashScope model name, and its limits.

Torch-free on purpose: the facade imports this module to validate requests without loading any
model code. `PADDOCK_MODELS` (a YAML file) replaces the built-in catalogue; see `load_registry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml


class TaskFamily(StrEnum):
    """The four HappyHorse task families of API.md §2."""

    T2V = "t2v"
    I2V = "i2v"
    R2V = "r2v"
    VIDEO_EDIT = "video-edit"


class Endpoint(StrEnum):
    """Which create path a model is posted to (API.md §1)."""

    VIDEO_GENERATION = "video-generation"
    IMAGE2VIDEO = "image2video"


@dataclass(frozen=True)
class ModelSpec:
    """One served model name.

    `backend` names a backend class in `model.backends` (e.g. `wan-ti2v`, `wan-vace`);
    `checkpoint` is a local folder in diffusers layout, or None for the tiny random-weight
    model of the same architecture (tests and the embedded default).
    """

    name: str
    family: TaskFamily
    backend: str
    checkpoint: str | None = None
    endpoint: Endpoint = Endpoint.VIDEO_GENERATION
    devices: tuple[str, ...] = ("cpu",)
    dtype: str = "float32"
    ulysses_degree: int = 1
    cfg_parallel: bool = False
    # What the backend generates natively; the worker resamples to the API's size and 24 fps.
    native_fps: int = 8
    native_pixels: int = 64 * 64
    size_multiple: int = 16
    max_native_frames: int = 121
    num_inference_steps: int = 3
    guidance_scale: float = 5.0
    options: dict[str, Any] = field(default_factory=dict)

    def native_frames(self, seconds: float) -> int:
        """Frames to generate for `seconds` of video: the 4k+1 rule of the Wan VAE, capped."""
        wanted = max(1, round(seconds * self.native_fps))
        k = max(1, math.ceil(wanted / 4))
        return min(4 * k + 1, self.max_native_frames)

    def native_size(self, width: int, height: int) -> tuple[int, int]:
        """A native (width, height) with the output's aspect, about `native_pixels`, multiples of
        `size_multiple`."""
        scale = math.sqrt(self.native_pixels / (width * height))
        m = self.size_multiple
        return max(m, round(width * scale / m) * m), max(m, round(height * scale / m) * m)


HAPPYHORSE_NAMES: dict[str, TaskFamily] = {
    "happyhorse-1.0-t2v": TaskFamily.T2V,
    "happyhorse-1.1-t2v": TaskFamily.T2V,
    "happyhorse-1.0-i2v": TaskFamily.I2V,
    "happyhorse-1.1-i2v": TaskFamily.I2V,
    "happyhorse-1.0-r2v": TaskFamily.R2V,
    "happyhorse-1.1-r2v": TaskFamily.R2V,
    "happyhorse-1.0-video-edit": TaskFamily.VIDEO_EDIT,
}

# The tiny random-weight backend serving each family by default (DESIGN.md §5): the
# single-stream audio-video transformer (daVinci-MagiHuman) for t2v and i2v, so the default
# output's sound is the model's; Wan VACE for r2v and video editing.
DEFAULT_BACKENDS: dict[TaskFamily, str] = {
    TaskFamily.T2V: "magihuman",
    TaskFamily.I2V: "magihuman",
    TaskFamily.R2V: "wan-vace",
    TaskFamily.VIDEO_EDIT: "wan-vace",
}

# Spec defaults a backend needs unless a spec says otherwise: the latent grids of Wan 2.2 TI2V
# and MagiHuman (VAE 16 x patch 2) take sizes in multiples of 32; MagiHuman's distilled DiT
# samples in 8 steps.
BACKEND_DEFAULTS: dict[str, dict[str, Any]] = {
    "wan-ti2v": {"size_multiple": 32},
    "magihuman": {"size_multiple": 32, "num_inference_steps": 8},
}


def default_registry() -> dict[str, ModelSpec]:
    """Every HappyHorse name served by a tiny random-weight model on CPU (`DEFAULT_BACKENDS`)."""
    specs = {}
    for name, family in HAPPYHORSE_NAMES.items():
        backend = DEFAULT_BACKENDS[family]
        specs[name] = ModelSpec(
            name=name, family=family, backend=backend, **BACKEND_DEFAULTS.get(backend, {})
        )
    return specs


def load_registry(path: str | Path | None) -> dict[str, ModelSpec]:
    """Read a `PADDOCK_MODELS` YAML file, or return the built-in catalogue when `path` is None.

    The file maps model names to specs; a spec's omitted keys take `BACKEND_DEFAULTS`, then
    `ModelSpec`'s defaults::

        models:
          happyhorse-1.0-i2v:
            family: i2v
            backend: wan-ti2v
            checkpoint: /models/Wan2.2-TI2V-5B-Diffusers
            devices: [cuda:0]
            dtype: bfloat16
            native_fps: 24
            native_pixels: 921600
            size_multiple: 32
          # daVinci-MagiHuman (backend magihuman, see model.backends.magihuman.settings): the
          # distilled DiT from the released layout (model.safetensors or its sharded index), the
          # other components from their own releases, the 1080p SR stage after it.
          happyhorse-1.0-t2v:
            backend: magihuman
            checkpoint: /models/daVinci-MagiHuman/distill
            devices: [cuda:0, cuda:1]
            ulysses_degree: 2                # context parallel over both GPUs
            dtype: bfloat16
            native_fps: 25                   # the released model's rate
            native_pixels: 2088960           # 1920x1088 out of the SR stage
            max_native_frames: 253           # 10 s at 25 fps (frame counts are 4k + 1)
            num_inference_steps: 8
            options:
              variant: distill               # or base: 32 flow UniPC steps with CFG
              text_encoder: /models/t5gemma-9b-9b-ul2
              vae: /models/Wan2.2-TI2V-5B-Diffusers/vae
              audio_vae: /models/stable-audio-open-1.0/vae
              sr: {checkpoint: /models/daVinci-MagiHuman/1080p_sr, base_pixels: 114688, local_attention: true}
          # The same model converted to one diffusers-style folder (transformer/, sr/, vae/,
          # audio_vae/, text_encoder/, tokenizer/): every component is found in it.
          happyhorse-1.1-i2v:
            backend: magihuman
            checkpoint: /models/daVinci-MagiHuman-base-diffusers
            devices: [cuda:0]
            dtype: bfloat16
            native_fps: 25
            native_pixels: 114688            # 448x256, no SR stage
            num_inference_steps: 32
            options: {variant: base}
    """
    if path is None:
        return default_registry()
    raw = yaml.safe_load(Path(path).read_text()) or {}
    entries = raw.get("models", raw)
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{path}: expected a mapping of model names under 'models'")
    specs: dict[str, ModelSpec] = {}
    for name, body in entries.items():
        body = dict(body or {})
        family = TaskFamily(body.pop("family", HAPPYHORSE_NAMES.get(name, "")))
        body.setdefault("backend", DEFAULT_BACKENDS[family])
        if "endpoint" in body:
            body["endpoint"] = Endpoint(body["endpoint"])
        if "devices" in body:
            body["devices"] = tuple(body["devices"])
        known = set(ModelSpec.__dataclass_fields__)
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"{path}: model {name!r} has unknown keys {sorted(unknown)}")
        backend = body.pop("backend")
        defaults = BACKEND_DEFAULTS.get(backend, {})
        specs[name] = replace(ModelSpec(name=name, family=family, backend=backend, **defaults), **body)
    return specs
