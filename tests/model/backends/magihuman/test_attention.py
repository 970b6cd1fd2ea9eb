"""Attention over packed samples against a dense masked softmax written from the definition."""

from __future__ import annotations

import math

import pytest
import torch

from model.backends.magihuman.attention import AttentionPlan, SampleSpan, attend

# Three samples: (video frames, tokens per frame, audio + text tokens).
SAMPLES = [(3, 4, 5), (5, 2, 3), (1, 6, 2)]
HEADS, KV_HEADS, DIM = 4, 2, 8


def spans() -> tuple[SampleSpan, ...]:
    out, start = [], 0
    for frames, per_frame, tail in SAMPLES:
        length = frames * per_frame + tail
        out.append(SampleSpan(start, length, frames * per_frame, frames))
        start += length
    return tuple(out)


def allowed(spans: tuple[SampleSpan, ...], reach: int | None) -> torch.Tensor:
    """[query, key] -> may attend: same sample; with a `reach`, a video query of frame i sees
    video frames i - reach .. i + reach and every non-video token of its sample."""
    total = spans[-1].end
    mask = torch.zeros(total, total, dtype=torch.bool)
    for span in spans:
        for q in range(span.start, span.end):
            for k in range(span.start, span.end):
                q_video, k_video = q - span.start < span.video_tokens, k - span.start < span.video_tokens
                if reach is None or not (q_video and k_video):
                    mask[q, k] = True
                else:
                    q_frame = (q - span.start) // span.tokens_per_frame
                    k_frame = (k - span.start) // span.tokens_per_frame
                    mask[q, k] = abs(q_frame - k_frame) <= reach
    return mask


def dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked softmax attention in float64; query head h reads key/value head h // 2."""
    k, v = (
        k.double().repeat_interleave(HEADS // KV_HEADS, 1),
        v.double().repeat_interleave(HEADS // KV_HEADS, 1),
    )
    scores = torch.einsum("qhd,khd->hqk", q.double(), k) / math.sqrt(DIM)
    weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    return torch.einsum("hqk,khd->qhd", weights, v).float()


def qkv(tokens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (
        torch.randn(tokens, HEADS, DIM, generator=generator),
        torch.randn(tokens, KV_HEADS, DIM, generator=generator),
        torch.randn(tokens, KV_HEADS, DIM, generator=generator),
    )


@pytest.mark.parametrize("padded", [False, True], ids=["one-call-each", "padded-with-key-mask"])
def test_packed_samples_attend_only_within_themselves(padded: bool) -> None:
    packed = spans()
    q, k, v = qkv(packed[-1].end)
    plan = AttentionPlan.build(packed, 11, q.device, padded=padded)
    assert (plan.key_mask is not None) == padded
    out = attend(q, k, v, plan, local=False)
    torch.testing.assert_close(out, dense(q, k, v, allowed(packed, None)), atol=1e-5, rtol=1e-5)


def test_one_sample_runs_unpadded_and_agrees() -> None:
    packed = spans()[:1]
    q, k, v = qkv(packed[0].end)
    plan = AttentionPlan.build(packed, 11, q.device)
    assert plan.pad_index is None
    torch.testing.assert_close(attend(q, k, v, plan, local=False), dense(q, k, v, allowed(packed, None)))


@pytest.mark.parametrize("reach", [0, 1, 3])
def test_frame_local_attention_windows_video_and_keeps_audio_and_text_global(reach: int) -> None:
    packed = spans()
    q, k, v = qkv(packed[-1].end)
    out = attend(q, k, v, AttentionPlan.build(packed, reach, q.device), local=True)
    torch.testing.assert_close(out, dense(q, k, v, allowed(packed, reach)), atol=1e-5, rtol=1e-5)
    # The window matters: with reach 0 the result differs from full attention.
    if reach == 0:
        assert not torch.allclose(out, dense(q, k, v, allowed(packed, None)), atol=1e-3)
