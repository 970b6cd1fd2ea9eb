"""The daVinci-MagiHuman single-stream audio-video transformer (paddock's implementation).

No cross-attention and no timestep input: video, audio and text tokens share one sequence,
each modality embedded by its own linear layer, and the noise level is read from the latents
themselves. The forward takes a packed batch of any number of jobs.
"""

from __future__ import annotations

import torch
from torch import nn

from model.backends.magihuman.attention import AttentionPlan
from model.backends.magihuman.config import AUDIO, TEXT, VIDEO, MagiHumanConfig
from model.backends.magihuman.layers import RMSNorm, TokenLayout, TransformerLayer
from model.backends.magihuman.packing import PackedBatch
from model.backends.magihuman.rope import rope_tables


class MagiHumanTransformer(nn.Module):
    """Embedders, `config.num_layers` layers, and per-modality output heads.

    `dtype` is the projections' weight and matmul dtype (bf16 for real checkpoints); embedders,
    norms, output heads and the residual stream stay fp32 whatever it is.
    """

    def __init__(self, config: MagiHumanConfig, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.video_embed = nn.Linear(config.video_in_channels, hidden, dtype=torch.float32)
        self.audio_embed = nn.Linear(config.audio_in_channels, hidden, dtype=torch.float32)
        self.text_embed = nn.Linear(config.text_in_channels, hidden, dtype=torch.float32)
        self.layers = nn.ModuleList(
            TransformerLayer(config, index, dtype) for index in range(config.num_layers)
        )
        self.video_out_norm = RMSNorm(hidden)
        self.audio_out_norm = RMSNorm(hidden)
        self.video_out = nn.Linear(hidden, config.video_in_channels, bias=False, dtype=torch.float32)
        self.audio_out = nn.Linear(hidden, config.audio_in_channels, bias=False, dtype=torch.float32)

    @property
    def matmul_dtype(self) -> torch.dtype:
        return self.layers[0].attn.qkv.weight.dtype

    def layout(self, batch: PackedBatch) -> TokenLayout:
        """What every layer needs to know about `batch`'s rows: modality, RoPE angles, samples."""
        sin, cos = rope_tables(batch.coords, self.config.head_dim)
        plan = AttentionPlan.build(batch.spans, batch.frame_receptive_field, batch.coords.device)
        return TokenLayout(batch.rows, sin, cos, plan)

    def forward(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity for every video and audio row of `batch`: video [video rows, pT*pH*pW*C]
        (channel-last; `packing.unpack` restores latents) and audio [audio rows, C_audio]."""
        rows, layout = batch.rows, self.layout(batch)
        x = batch.coords.new_zeros(batch.num_tokens, self.config.hidden_size)
        for kind, embed, tokens in (
            (TEXT, self.text_embed, batch.text_tokens),
            (AUDIO, self.audio_embed, batch.audio_tokens),
            (VIDEO, self.video_embed, batch.video_tokens),
        ):
            if rows[kind] is not None:
                x[rows[kind]] = embed(tokens.to(torch.float32))
        for layer in self.layers:
            x = layer(x, layout)
        video = self._head(x, rows[VIDEO], self.video_out_norm, self.video_out)
        audio = self._head(x, rows[AUDIO], self.audio_out_norm, self.audio_out)
        return video, audio

    @staticmethod
    def _head(
        x: torch.Tensor, rows: slice | torch.Tensor | None, norm: RMSNorm, linear: nn.Linear
    ) -> torch.Tensor:
        if rows is None:
            return x.new_zeros(0, linear.out_features)
        return linear(norm(x[rows]))
