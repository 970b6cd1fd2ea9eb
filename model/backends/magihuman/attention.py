"""Attention over a packed batch: each sample attends only to itself (block-diagonal).

Three kernels, one meaning:

- FlashAttention's varlen path, when `flash_attn` is importable and the tensors are half
  precision on a GPU: the packed sequence and `cu_seqlens`, no padding.
- Otherwise PyTorch SDPA. One sample runs unmasked. Several, on a GPU, are padded to the
  longest with a key-padding mask, which is the block-diagonal mask without its all-masked
  blocks; on a CPU each sample runs unmasked in turn, because a masked SDPA falls back to a CPU
  kernel several times slower than the unmasked one (2.5x on the 40-layer toy model).
- Frame-local attention (the 1080p SR layers): a video token of latent frame i sees the video
  frames i - r .. i + r of its sample plus all of its sample's audio and text; audio and text
  tokens see their whole sample. Frames with the same window run as one SDPA call.

Grouped-query attention throughout: query head h reads key/value head h // (heads / kv_heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import torch
import torch.nn.functional as F

try:
    from flash_attn import flash_attn_varlen_func
except ImportError:  # CPU machines and GPUs without the package use SDPA
    flash_attn_varlen_func = None


@dataclass(frozen=True)
class SampleSpan:
    """One sample's rows in the packed sequence: `video_tokens` first (`frames` latent frames of
    equal size), then its audio and text tokens, `length` rows in all from `start`."""

    start: int
    length: int
    video_tokens: int
    frames: int

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def tokens_per_frame(self) -> int:
        return self.video_tokens // self.frames


@dataclass(frozen=True)
class AttentionPlan:
    """What the kernels need to keep samples apart, built once per forward."""

    spans: tuple[SampleSpan, ...]
    cu_seqlens: torch.Tensor  # int32 [samples + 1]
    max_seqlen: int
    frame_receptive_field: int
    # Padded SDPA: row index of each (sample, position) and which positions are real keys.
    pad_index: torch.Tensor | None
    key_mask: torch.Tensor | None

    @classmethod
    def build(
        cls,
        spans: tuple[SampleSpan, ...],
        frame_receptive_field: int,
        device: torch.device,
        padded: bool | None = None,
    ) -> AttentionPlan:
        """The plan for `spans` (consecutive, starting at row 0) on `device`; `padded` (default:
        on a GPU) pads several samples into one masked SDPA rather than one call each."""
        lengths = [span.length for span in spans]
        cu_seqlens = torch.tensor([0, *accumulate(lengths)], dtype=torch.int32, device=device)
        longest = max(lengths)
        pad_index = key_mask = None
        if padded is None:
            padded = device.type != "cpu"
        if len(spans) > 1 and padded:
            positions = torch.arange(longest, device=device)
            starts = torch.tensor([span.start for span in spans], device=device)
            real = positions < torch.tensor(lengths, device=device)[:, None]
            # Padding positions read row 0; the mask keeps them out of every softmax.
            pad_index = torch.where(real, starts[:, None] + positions, 0)
            key_mask = real[:, None, None, :]
        return cls(spans, cu_seqlens, longest, frame_receptive_field, pad_index, key_mask)


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan, local: bool
) -> torch.Tensor:
    """Softmax attention of q [tokens, heads, d] over k, v [tokens, kv_heads, d] within each sample."""
    if local:
        return _frame_local(q, k, v, plan)
    if flash_attn_varlen_func is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        cu, longest = plan.cu_seqlens, plan.max_seqlen
        return flash_attn_varlen_func(q, k, v, cu, cu, longest, longest)
    if len(plan.spans) == 1:
        return _sdpa(q, k, v)
    if plan.pad_index is None or plan.key_mask is None:
        return _sdpa_each(q, k, v, plan.spans)
    return _sdpa_padded(q, k, v, plan.pad_index, plan.key_mask, plan.spans)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One sequence: [tokens, heads, d] in and out."""
    out = F.scaled_dot_product_attention(
        q.transpose(0, 1).unsqueeze(0),
        k.transpose(0, 1).unsqueeze(0),
        v.transpose(0, 1).unsqueeze(0),
        enable_gqa=True,
    )
    return out.squeeze(0).transpose(0, 1)


def _sdpa_each(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, spans: tuple[SampleSpan, ...]
) -> torch.Tensor:
    out = torch.empty_like(q)
    for span in spans:
        rows = slice(span.start, span.end)
        out[rows] = _sdpa(q[rows], k[rows], v[rows])
    return out


def _sdpa_padded(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pad_index: torch.Tensor,
    key_mask: torch.Tensor,
    spans: tuple[SampleSpan, ...],
) -> torch.Tensor:
    def padded(x: torch.Tensor) -> torch.Tensor:  # [samples, heads, longest, d]
        return x[pad_index].transpose(1, 2)

    # Key/value heads repeated up front: SDPA takes a mask with grouped-query heads only in its
    # math kernel, which would materialise every score.
    groups = q.shape[1] // k.shape[1]
    keys, values = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    out = F.scaled_dot_product_attention(padded(q), padded(keys), padded(values), attn_mask=key_mask)
    out = out.transpose(1, 2)  # [samples, longest, heads, d]
    result = torch.empty_like(q)
    for row, span in enumerate(spans):
        result[span.start : span.end] = out[row, : span.length]
    return result


def _frame_local(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    out = torch.empty_like(q)
    reach = plan.frame_receptive_field
    for span in plan.spans:
        tail = slice(span.start + span.video_tokens, span.end)
        if span.length > span.video_tokens:
            out[tail] = _sdpa(q[tail], k[span.start : span.end], v[span.start : span.end])
        per_frame = span.tokens_per_frame
        for first, last, low, high in frame_windows(span.frames, reach):
            rows = slice(span.start + first * per_frame, span.start + last * per_frame)
            window = slice(span.start + low * per_frame, span.start + high * per_frame)
            keys, values = torch.cat((k[window], k[tail])), torch.cat((v[window], v[tail]))
            out[rows] = _sdpa(q[rows], keys, values)
    return out


def frame_windows(frames: int, reach: int) -> list[tuple[int, int, int, int]]:
    """Runs of consecutive frames sharing one key window: (first, last + 1, low, high + 1)."""
    runs: list[tuple[int, int, int, int]] = []
    for frame in range(frames):
        low, high = max(0, frame - reach), min(frames, frame + reach + 1)
        if runs and runs[-1][2:] == (low, high):
            runs[-1] = (runs[-1][0], frame + 1, low, high)
        else:
            runs.append((frame, frame + 1, low, high))
    return runs
