"""LTX-2 guidance: every knob of the stock pipelines' `__call__`, and the stock formula that
combines a job's predictions of one step in x0 space."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from diffusers.pipelines.ltx2 import pipeline_ltx2

from model.step import NativeJob


@dataclass(frozen=True)
class Guidance:
    """Every guidance knob of the LTX-2 pipelines, named as `__call__` names them, the audio values
    already resolved the way `LTX2Pipeline.__call__` resolves them (`audio_x or x`)."""

    guidance_scale: float
    audio_guidance_scale: float
    guidance_rescale: float
    audio_guidance_rescale: float
    stg_scale: float
    audio_stg_scale: float
    spatio_temporal_guidance_blocks: tuple[int, ...]
    modality_scale: float
    audio_modality_scale: float
    use_cross_timestep: bool

    @property
    def cfg(self) -> bool:
        return self.guidance_scale > 1.0 or self.audio_guidance_scale > 1.0

    @property
    def stg(self) -> bool:
        return self.stg_scale > 0.0 or self.audio_stg_scale > 0.0

    @property
    def modality(self) -> bool:
        return self.modality_scale > 1.0 or self.audio_modality_scale > 1.0

    @property
    def switches(self) -> tuple[Any, ...]:
        """What decides which transformer calls a step makes: jobs batch only when these match."""
        blocks = self.spatio_temporal_guidance_blocks if self.stg else ()
        return (self.cfg, self.stg, blocks, self.modality, self.use_cross_timestep)

    def scales(self, audio: bool) -> tuple[float, float, float, float]:
        """(cfg, stg, modality, rescale) of the video or the audio stream."""
        if audio:
            return (
                self.audio_guidance_scale,
                self.audio_stg_scale,
                self.audio_modality_scale,
                self.audio_guidance_rescale,
            )
        return (self.guidance_scale, self.stg_scale, self.modality_scale, self.guidance_rescale)

    def pipeline_kwargs(self) -> dict[str, Any]:
        """The same settings as `__call__` arguments."""
        blocks = list(self.spatio_temporal_guidance_blocks) or None
        return {**asdict(self), "spatio_temporal_guidance_blocks": blocks}


def guidance_for(options: dict[str, Any], job: NativeJob) -> Guidance:
    """The job's guidance: video CFG from the job, the rest from `options` (stock defaults except
    STG off, modality guidance off and no rescale, which cost extra forwards or need tuning)."""
    cfg = job.guidance_scale
    stg = float(options.get("stg_scale", 0.0))
    modality = float(options.get("modality_scale", 1.0))
    rescale = float(options.get("guidance_rescale", 0.0))
    guidance = Guidance(
        guidance_scale=cfg,
        audio_guidance_scale=float(options.get("audio_guidance_scale") or cfg),
        guidance_rescale=rescale,
        audio_guidance_rescale=float(options.get("audio_guidance_rescale") or rescale),
        stg_scale=stg,
        audio_stg_scale=float(options.get("audio_stg_scale") or stg),
        spatio_temporal_guidance_blocks=tuple(int(b) for b in options.get("stg_blocks", ())),
        modality_scale=modality,
        audio_modality_scale=float(options.get("audio_modality_scale") or modality),
        use_cross_timestep=bool(options.get("use_cross_timestep", True)),
    )
    if guidance.stg and not guidance.spatio_temporal_guidance_blocks:
        raise ValueError("LTX-2 STG needs options.stg_blocks (e.g. [29] for LTX-2.0, [28] for LTX-2.3)")
    return guidance


def combine(
    cond: torch.Tensor | None,
    uncond: torch.Tensor | None,
    stg: torch.Tensor | None,
    modality: torch.Tensor | None,
    scales: tuple[float, float, float, float],
) -> torch.Tensor:
    """The stock guidance in x0 space, term for term and in the same order (delta form);
    `scales` is (cfg, stg, modality, rescale)."""
    assert cond is not None
    cfg_scale, stg_scale, modality_scale, rescale = scales
    cfg_delta: Any = 0 if uncond is None else (cfg_scale - 1) * (cond - uncond)
    stg_delta: Any = 0 if stg is None else stg_scale * (cond - stg)
    modality_delta: Any = 0 if modality is None else (modality_scale - 1) * (cond - modality)
    guided = cond + cfg_delta + stg_delta + modality_delta
    if rescale > 0:
        return pipeline_ltx2.rescale_noise_cfg(guided, cond, guidance_rescale=rescale)
    return guided
