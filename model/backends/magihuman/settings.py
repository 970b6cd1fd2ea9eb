"""A MagiHuman model's settings, read once from its registry spec (`ModelSpec.options`).

options:
  variant: distill          # distill: 8 DDIM-style steps, no CFG | base: flow UniPC with CFG
  audio_guidance_scale: 5.0 # base: the audio's CFG scale (the video's early scale is the job's)
  late_guidance_scale: 2.0  # base: the video's CFG scale once t <= 500
  sr:                       # optional second stage on the super-resolution DiT
    base_pixels: 114688     # the first stage's size (448x256); the job's native size is the SR output
    steps: 5
    local_attention: true   # the 1080p SR DiT: frame-local attention on 32 of its 40 layers
    checkpoint: /models/daVinci-MagiHuman/1080p_sr   # without an sr/ folder in the model's
  text_encoder: /models/t5gemma-9b-9b-ul2            # the components, when `checkpoint` is a
  vae: /models/Wan2.2-TI2V-5B-Diffusers/vae          # transformer folder in the released
  audio_vae: /models/stable-audio-open-1.0/vae       # layout rather than a diffusers-style folder
  tiny_seed: 0              # the random-weight model's seed (no checkpoint)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from model.backends.magihuman.components import ComponentPaths
from model.backends.magihuman.samplers import (
    AUDIO_GUIDANCE,
    SR_AUDIO_NOISE,
    SR_NOISE_INDEX,
    SR_STEPS,
    VIDEO_GUIDANCE_LATE,
)
from model.registry import ModelSpec

VARIANTS = ("distill", "base")
SIZE_MULTIPLE = 32  # VAE 16 x patch 2: a pixel size the latent grid splits into whole tokens


@dataclass(frozen=True)
class SRSettings:
    """The optional super-resolution stage: the base latent upsampled to the job's size,
    re-noised to ZeroSNR level `noise_index`, then `steps` flow UniPC steps without guidance
    (as the released examples run it), the audio fixed."""

    base_pixels: int
    steps: int = SR_STEPS
    local_attention: bool = False
    checkpoint: str | None = None
    noise_index: int = SR_NOISE_INDEX
    audio_noise: float = SR_AUDIO_NOISE

    @classmethod
    def of(cls, raw: Any) -> SRSettings:
        if not isinstance(raw, dict) or "base_pixels" not in raw:
            raise ValueError("magihuman options.sr must be a mapping with at least base_pixels")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"magihuman options.sr has unknown keys {sorted(unknown)}")
        settings = cls(**raw)
        if settings.base_pixels < SIZE_MULTIPLE**2 or settings.steps < 1:
            raise ValueError("magihuman options.sr needs base_pixels >= 1024 and steps >= 1")
        return settings

    def base_size(self, width: int, height: int) -> tuple[int, int]:
        """The first stage's (width, height) for an SR output of `width` x `height`: about
        `base_pixels` at the same aspect, multiples of 32, never larger than the output."""
        scale = min(1.0, math.sqrt(self.base_pixels / (width * height)))

        def side(value: int) -> int:
            return max(SIZE_MULTIPLE, round(value * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE)

        return side(width), side(height)


@dataclass(frozen=True)
class MagiHumanSettings:
    """Everything the backend reads from `spec.options`, checked."""

    variant: Literal["distill", "base"] = "distill"
    audio_guidance_scale: float = AUDIO_GUIDANCE
    late_guidance_scale: float = VIDEO_GUIDANCE_LATE
    sr: SRSettings | None = None
    text_encoder: str | None = None
    vae: str | None = None
    audio_vae: str | None = None
    tokenizer: str | None = None
    tiny_seed: int = 0

    @property
    def guided(self) -> bool:
        """Whether the first stage runs classifier-free guidance (the base DiT does)."""
        return self.variant == "base"

    @classmethod
    def of(cls, spec: ModelSpec) -> MagiHumanSettings:
        """The settings of `spec`; ValueError naming a bad option."""
        options = spec.options
        variant = str(options.get("variant", "distill"))
        if variant not in VARIANTS:
            raise ValueError(f"magihuman options.variant must be one of {VARIANTS}, got {variant!r}")
        if spec.cfg_parallel:
            raise ValueError(
                "magihuman does not take cfg_parallel: a job's guided and unguided copies share one "
                "packed sequence; split it with ulysses_degree instead"
            )
        if spec.size_multiple % SIZE_MULTIPLE:
            raise ValueError(f"magihuman needs size_multiple to be a multiple of {SIZE_MULTIPLE}")

        def path(name: str) -> str | None:
            value = options.get(name)
            return None if value is None else str(value)

        return cls(
            variant="base" if variant == "base" else "distill",
            audio_guidance_scale=float(options.get("audio_guidance_scale", AUDIO_GUIDANCE)),
            late_guidance_scale=float(options.get("late_guidance_scale", VIDEO_GUIDANCE_LATE)),
            sr=None if options.get("sr") is None else SRSettings.of(options["sr"]),
            text_encoder=path("text_encoder"),
            vae=path("vae"),
            audio_vae=path("audio_vae"),
            tokenizer=path("tokenizer"),
            tiny_seed=int(options.get("tiny_seed", 0)),
        )

    def component_paths(self, checkpoint: str) -> ComponentPaths:
        """Where the components of `checkpoint` are: a diffusers-style folder (with
        `transformer/`), each component overridable by its option; or a transformer folder in the
        released layout, with `text_encoder`, `vae` and `audio_vae` from the options."""
        root = Path(checkpoint)
        if (root / "transformer").is_dir():
            folder = ComponentPaths.folder(root)
        else:
            missing = [name for name in ("text_encoder", "vae", "audio_vae") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"{root} has no transformer/ folder, so it is read as a released-layout transformer; "
                    f"then options {missing} must name the other components"
                )
            folder = ComponentPaths(root, root, root, root, root)

        def chosen(option: str | None, default: Path) -> Path:
            return default if option is None else Path(option)

        text_encoder = chosen(self.text_encoder, folder.text_encoder)
        sr = folder.sr if self.sr is None or self.sr.checkpoint is None else Path(self.sr.checkpoint)
        if self.sr is not None and sr is None:
            raise ValueError(f"options.sr needs an sr/ folder in {root} or options.sr.checkpoint")
        return ComponentPaths(
            transformer=folder.transformer,
            text_encoder=text_encoder,
            tokenizer=chosen(self.tokenizer, folder.tokenizer if self.text_encoder is None else text_encoder),
            vae=chosen(self.vae, folder.vae),
            audio_vae=chosen(self.audio_vae, folder.audio_vae),
            sr=sr if self.sr is not None else None,
        )
