"""How the backend calls a stage's transformer: through the engine's `ForwardRunner`.

A runner calls `module(**inputs, return_dict=False)[0]`, locally or on every rank of a parallel
group (which broadcasts the inputs first). `RunnerEntry` gives `MagiHumanTransformer` that
convention: a packed batch's fields as keyword inputs (`PackedBatch.as_inputs`), and one flat
tensor out, the video rows' velocities then the audio rows'. It also carries the transformer's
own Ulysses switch, which a parallel group finds and calls (`enable_ulysses`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from model.backends.magihuman.packing import PackedBatch, PackingConfig, SampleInput, pack, unpack
from model.backends.magihuman.transformer import MagiHumanTransformer
from model.step import ForwardRunner


class RunnerEntry(nn.Module):
    """`transformer` in the runner's calling convention; see the module docstring."""

    def __init__(self, transformer: MagiHumanTransformer) -> None:
        super().__init__()
        self.transformer = transformer

    def enable_ulysses(self, group: Any) -> None:
        """Shard the transformer's sequence over the ranks of `group` (Ulysses)."""
        self.transformer.enable_ulysses(group)

    def forward(self, return_dict: bool = False, **inputs: Any) -> tuple[torch.Tensor]:
        del return_dict  # always a tuple, as runners ask
        video, audio = self.transformer(PackedBatch.from_inputs(inputs))
        return (torch.cat([video.flatten(), audio.flatten()]),)

    def split(self, flat: torch.Tensor, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward`'s flat output -> video [video rows, channels] and audio [audio rows, channels]."""
        config = self.transformer.config
        size = batch.video_tokens.shape[0] * config.video_in_channels
        return flat[:size].reshape(-1, config.video_in_channels), flat[size:].reshape(
            -1, config.audio_in_channels
        )


@dataclass(frozen=True)
class StageModel:
    """A stage's transformer, its runner entry and how it wants its input packed."""

    transformer: MagiHumanTransformer
    entry: RunnerEntry
    packing: PackingConfig

    @classmethod
    def of(cls, transformer: MagiHumanTransformer, packing: PackingConfig) -> StageModel:
        return cls(transformer, RunnerEntry(transformer), packing)

    def predict(
        self, runner: ForwardRunner, samples: Sequence[SampleInput]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Velocities (video [C, T, H, W], audio [A, C_audio]) of every sample, one forward."""
        batch = pack(samples, self.packing)
        flat = runner.run(self.entry, **batch.as_inputs())
        return unpack(batch, *self.entry.split(flat, batch))
