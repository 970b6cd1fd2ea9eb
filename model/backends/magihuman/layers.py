"""The transformer's building blocks: per-modality norms and projections, gelu7/swiglu7 MLPs,
gated GQA self-attention, and the pre-norm layer that strings them together.

Precision follows the original: the residual stream and every norm run in fp32, the projections
and attention in the projection weights' dtype (bf16 for real checkpoints, fp32 for the tiny
CPU models), with activations cast up to fp32 between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.backends.magihuman.attention import AttentionPlan, attend
from model.backends.magihuman.config import MagiHumanConfig
from model.backends.magihuman.rope import apply_rope
from model.backends.magihuman.ulysses import SequenceShard

# Rows of one modality in the packed sequence: a slice when contiguous, an index otherwise,
# None when the batch has none.
Rows = slice | torch.Tensor | None


def row_count(rows: Rows) -> int:
    """How many rows `rows` selects."""
    if rows is None:
        return 0
    if isinstance(rows, slice):
        return int(rows.stop) - int(rows.start)
    return int(rows.numel())


_ALPHA, _LIMIT = 1.702, 7.0


@dataclass(frozen=True)
class TokenLayout:
    """What every row this rank holds is, computed once per forward and read by every layer.

    Without context parallelism the rows are the whole packed sequence. With a Ulysses `shard`
    they are the shard's rows (`rows`, `sin` and `cos` in shard coordinates), while `plan`
    still describes the whole sequence, which attention sees after its all-to-all.
    """

    rows: tuple[Rows, ...]  # per modality, in modality-id order
    sin: torch.Tensor  # RoPE tables [rows, 3 x bands]
    cos: torch.Tensor
    plan: AttentionPlan
    shard: SequenceShard | None = None


def gelu7(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(1.702 x) with x clamped above at 7, in fp32."""
    x = x.to(torch.float32).clamp(max=_LIMIT)
    return x * torch.sigmoid(_ALPHA * x)


def swiglu7(x: torch.Tensor) -> torch.Tensor:
    """The gated form on interleaved channels (even: gate, odd: linear), in fp32:
    gelu7(gate) * (clamp(linear, -7, 7) + 1)."""
    x = x.to(torch.float32)
    gate, linear = x[..., ::2].clamp(max=_LIMIT), x[..., 1::2].clamp(min=-_LIMIT, max=_LIMIT)
    return gate * torch.sigmoid(_ALPHA * gate) * (linear + 1)


class RMSNorm(nn.Module):
    """RMSNorm in fp32 with the scale stored as (1 + weight), weight zero-initialised; with
    several modalities, one weight per modality stacked along the feature dim."""

    def __init__(self, dim: int, num_modalities: int = 1, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim, self.num_modalities, self.eps = dim, num_modalities, eps
        self.weight = nn.Parameter(torch.zeros(dim * num_modalities, dtype=torch.float32))

    def forward(self, x: torch.Tensor, rows: tuple[Rows, ...] = ()) -> torch.Tensor:
        """x [tokens, ..., dim], normalised over the last dim; `rows` says which weight each
        token takes when there are several."""
        t = x.to(torch.float32)
        t = t * torch.rsqrt(torch.mean(t**2, dim=-1, keepdim=True) + self.eps)
        if self.num_modalities == 1:
            return (t * (self.weight + 1)).to(x.dtype)
        for weight, modality_rows in zip(self.weight.chunk(self.num_modalities), rows, strict=True):
            if modality_rows is not None:
                t[modality_rows] = t[modality_rows] * (weight + 1)
        return t.to(x.dtype)


class ModalityLinear(nn.Module):
    """A bias-free projection with one weight per modality stacked on the output dim; each row
    is projected by its modality's weight, in the weight's dtype."""

    def __init__(self, in_features: int, out_features: int, num_modalities: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.in_features, self.out_features, self.num_modalities = in_features, out_features, num_modalities
        self.weight = nn.Parameter(torch.empty(out_features * num_modalities, in_features, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_features)  # nn.Linear's default range
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, rows: tuple[Rows, ...]) -> torch.Tensor:
        x = x.to(self.weight.dtype)
        if self.num_modalities == 1:
            return F.linear(x, self.weight)
        out = x.new_empty(x.shape[0], self.out_features)
        for weight, modality_rows in zip(self.weight.chunk(self.num_modalities), rows, strict=True):
            if modality_rows is not None:
                out[modality_rows] = F.linear(x[modality_rows], weight)
        return out


class MLP(nn.Module):
    def __init__(self, config: MagiHumanConfig, layer: int, dtype: torch.dtype) -> None:
        super().__init__()
        modalities, width = config.modalities(layer), config.mlp_width(layer)
        self.gated = config.mlp_gated(layer)
        self.norm = RMSNorm(config.hidden_size, modalities)
        self.up = ModalityLinear(config.hidden_size, width * (2 if self.gated else 1), modalities, dtype)
        self.down = ModalityLinear(width, config.hidden_size, modalities, dtype)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        h = self.up(self.norm(x, layout.rows), layout.rows).to(torch.float32)
        h = swiglu7(h) if self.gated else gelu7(h)
        return self.down(h, layout.rows).to(torch.float32)


class Attention(nn.Module):
    """Self-attention over the packed sequence: one projection gives q, k, v and (gated) one
    logit per query head; q and k get per-head RMSNorm, then RoPE; each head's output is scaled
    by sigmoid(gate)."""

    def __init__(self, config: MagiHumanConfig, layer: int, dtype: torch.dtype) -> None:
        super().__init__()
        modalities = config.modalities(layer)
        self.heads, self.kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, config.head_dim
        self.gates = self.heads if config.enable_attn_gating else 0
        self.local = layer in config.local_attn_layers
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        self.split = (q_size, kv_size, kv_size, self.gates)
        self.norm = RMSNorm(config.hidden_size, modalities)
        self.qkv = ModalityLinear(config.hidden_size, sum(self.split), modalities, dtype)
        self.q_norm = RMSNorm(self.head_dim, modalities)
        self.k_norm = RMSNorm(self.head_dim, modalities)
        self.out = ModalityLinear(q_size, config.hidden_size, modalities, dtype)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        tokens, dtype = x.shape[0], self.qkv.weight.dtype
        qkv = self.qkv(self.norm(x, layout.rows), layout.rows).to(torch.float32)
        q, k, v, gate = torch.split(qkv, self.split, dim=1)
        q = self.q_norm(q.reshape(tokens, self.heads, self.head_dim), layout.rows)
        k = self.k_norm(k.reshape(tokens, self.kv_heads, self.head_dim), layout.rows)
        q, k = apply_rope(q, layout.sin, layout.cos), apply_rope(k, layout.sin, layout.cos)
        v = v.reshape(tokens, self.kv_heads, self.head_dim)
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        if layout.shard is None:
            out = attend(q, k, v, layout.plan, self.local)
        else:
            shard = layout.shard
            q, k, v = shard.rows_to_heads(q), shard.rows_to_heads(k), shard.rows_to_heads(v)
            out = shard.heads_to_rows(attend(q, k, v, layout.plan, self.local))
        if self.gates:
            out = out * torch.sigmoid(gate.reshape(tokens, self.heads, 1))
        return self.out(out.reshape(tokens, -1), layout.rows)


class TransformerLayer(nn.Module):
    """Pre-norm attention then MLP, each added to the fp32 residual stream (with an extra
    norm on each branch's output in `post_norm_layers`)."""

    def __init__(self, config: MagiHumanConfig, layer: int, dtype: torch.dtype) -> None:
        super().__init__()
        modalities = config.modalities(layer)
        self.attn = Attention(config, layer, dtype)
        self.mlp = MLP(config, layer, dtype)
        self.post_norms = layer in config.post_norm_layers
        if self.post_norms:
            self.attn_post_norm = RMSNorm(config.hidden_size, modalities)
            self.mlp_post_norm = RMSNorm(config.hidden_size, modalities)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        attn = self.attn(x, layout)
        if self.post_norms:
            attn = self.attn_post_norm(attn, layout.rows)
        x = x + attn
        mlp = self.mlp(x, layout)
        if self.post_norms:
            mlp = self.mlp_post_norm(mlp, layout.rows)
        return x + mlp
