"""Per-job state inside the engine: latents, the job's own sampler, its encoded conditioning."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from model.backends.base import NativeJob


@dataclass
class JobState:
    """One admitted job between denoising steps.

    Everything a backend needs to run this job's next forward lives here, encoded once at
    admission: text embeddings, image/condition latents, the initial noise. `scheduler` is this
    job's own instance (UniPC keeps a history of model outputs, Euler a step index), so batching
    never mixes sampler state between jobs.
    """

    job: NativeJob
    backend_id: str
    latents: Any  # torch.Tensor [1, C, F, H, W]
    scheduler: Any
    timesteps: Any  # torch.Tensor [steps]
    prompt_embeds: Any
    negative_embeds: Any | None
    guidance_scale: float
    tokens: int  # transformer tokens of one sample (one CFG half)
    extras: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    cache_context: str | None = None

    @property
    def cfg(self) -> bool:
        return self.negative_embeds is not None

    @property
    def total_steps(self) -> int:
        return len(self.timesteps)

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    @property
    def timestep(self) -> Any:
        return self.timesteps[self.step]

    @property
    def cost(self) -> int:
        """Tokens this job puts into one batched forward (both CFG halves)."""
        return self.tokens * (2 if self.cfg else 1)

    def batch_key(self, *extra: Hashable) -> tuple[Hashable, ...]:
        """Jobs with equal keys can share one transformer forward: same backend, latent shape,
        guidance on/off, and whatever the backend adds (the active expert, a cache context)."""
        return (self.backend_id, tuple(self.latents.shape), self.cfg, self.cache_context, *extra)
