"""The daVinci-MagiHuman single-stream audio-video transformer (paddock's implementation).

No cross-attention and no timestep input: video, audio and text tokens share one sequence,
each modality embedded by its own linear layer, and the noise level is read from the latents
themselves. The forward takes a packed batch of any number of jobs; after `enable_ulysses` it
runs on one rank of a context-parallel group (see `ulysses`) and still returns the whole output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from model.backends.magihuman.attention import AttentionPlan
from model.backends.magihuman.config import AUDIO, TEXT, VIDEO, MagiHumanConfig
from model.backends.magihuman.layers import RMSNorm, TokenLayout, TransformerLayer, row_count
from model.backends.magihuman.packing import PackedBatch, modality_rows
from model.backends.magihuman.rope import rope_tables
from model.backends.magihuman.ulysses import UlyssesGroup


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
        self.ulysses: UlyssesGroup | None = None

    def enable_ulysses(self, group: Any) -> None:
        """Shard every forward's rows over the ranks of `group` (a torch.distributed process
        group of which every rank calls the forward with the same batch)."""
        ulysses = UlyssesGroup.of(group)
        ulysses.check_heads(self.config.num_heads, self.config.num_kv_heads)
        self.ulysses = ulysses

    @property
    def matmul_dtype(self) -> torch.dtype:
        return self.layers[0].attn.qkv.weight.dtype

    def layout(self, batch: PackedBatch) -> TokenLayout:
        """What every layer needs to know about the rows this rank holds: modality, RoPE angles,
        samples, and its shard of the sequence under context parallelism."""
        sin, cos = rope_tables(batch.coords, self.config.head_dim)
        plan = AttentionPlan.build(batch.spans, batch.frame_receptive_field, batch.coords.device)
        if self.ulysses is None:
            return TokenLayout(batch.rows, sin, cos, plan)
        shard = self.ulysses.shard(batch.num_tokens)
        rows = modality_rows(batch.modality[shard.start : shard.end])
        return TokenLayout(rows, sin[shard.start : shard.end], cos[shard.start : shard.end], plan, shard)

    def forward(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity for every video and audio row of `batch`: video [video rows, pT*pH*pW*C]
        (channel-last; `packing.unpack` restores latents) and audio [audio rows, C_audio]."""
        layout = self.layout(batch)
        rows = layout.rows
        start = 0 if layout.shard is None else layout.shard.start
        x = batch.coords.new_zeros(layout.sin.shape[0], self.config.hidden_size)
        for kind, embed, tokens in (
            (TEXT, self.text_embed, batch.text_tokens),
            (AUDIO, self.audio_embed, batch.audio_tokens),
            (VIDEO, self.video_embed, batch.video_tokens),
        ):
            if rows[kind] is not None:
                # this modality's tokens held by rows before the shard come first in `tokens`
                first = int((batch.modality[:start] == kind).sum()) if start else 0
                x[rows[kind]] = embed(tokens[first : first + row_count(rows[kind])].to(torch.float32))
        for layer in self.layers:
            x = layer(x, layout)
        video = self._head(x, rows[VIDEO], self.video_out_norm, self.video_out)
        audio = self._head(x, rows[AUDIO], self.audio_out_norm, self.audio_out)
        if layout.shard is None:
            return video, audio
        return self._gather(batch, layout, video, audio)

    def _gather(
        self, batch: PackedBatch, layout: TokenLayout, video: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every rank's output rows, in sequence order: one gather of [rows, video | audio]."""
        assert layout.shard is not None
        width = video.shape[1]
        local = video.new_zeros(layout.sin.shape[0], width + audio.shape[1])
        for kind, out, columns in ((VIDEO, video, slice(0, width)), (AUDIO, audio, slice(width, None))):
            if layout.rows[kind] is not None:
                local[layout.rows[kind], columns] = out
        whole = layout.shard.gather_rows(local)
        return self._pick(whole, batch.rows[VIDEO], slice(0, width)), self._pick(
            whole, batch.rows[AUDIO], slice(width, None)
        )

    @staticmethod
    def _pick(whole: torch.Tensor, rows: slice | torch.Tensor | None, columns: slice) -> torch.Tensor:
        if rows is None:
            return whole.new_zeros(0, whole[:, columns].shape[1])
        return whole[rows][:, columns]

    @staticmethod
    def _head(
        x: torch.Tensor, rows: slice | torch.Tensor | None, norm: RMSNorm, linear: nn.Linear
    ) -> torch.Tensor:
        if rows is None:
            return x.new_zeros(0, linear.out_features)
        return linear(norm(x[rows]))
