"""Packing: patch order in and out, the [video | audio | text] layout of several jobs, positions."""

from __future__ import annotations

import pytest
import torch

from model.backends.magihuman.config import AUDIO, TEXT, VIDEO
from model.backends.magihuman.packing import (
    PackingConfig,
    SampleInput,
    pack,
    patchify,
    sample_coords,
    unpack,
    unpatchify,
)
from tests.support.magihuman import make_sample

PATCH = (1, 2, 2)


def coded_latent(channels: int, frames: int, height: int, width: int) -> torch.Tensor:
    """Each cell holds c*1000 + t*100 + h*10 + w, so a token's features name their origin."""
    c, t, h, w = torch.meshgrid(
        torch.arange(channels), torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij"
    )
    return (c * 1000 + t * 100 + h * 10 + w).to(torch.float32)


def channel_last_tokens(latent: torch.Tensor) -> torch.Tensor:
    """What the transformer emits for `latent`: per token, features ordered (pT pH pW C)."""
    channels, frames, height, width = latent.shape
    tokens = []
    for t in range(frames):
        for h in range(0, height, 2):
            for w in range(0, width, 2):
                tokens.append(
                    torch.stack(
                        [
                            latent[c, t, h + i, w + j]
                            for i in range(2)
                            for j in range(2)
                            for c in range(channels)
                        ]
                    )
                )
    return torch.stack(tokens)


def test_patchify_packs_each_token_channel_major() -> None:
    latent = coded_latent(3, 2, 4, 4)
    tokens = patchify(latent, PATCH)
    assert tokens.shape == (2 * 2 * 2, 3 * 4)
    # Token 6 is the patch at t=1, rows 2-3, columns 0-1; its features run (c, ph, pw).
    expected = [c * 1000 + 100 + (2 + i) * 10 + j for c in range(3) for i in range(2) for j in range(2)]
    assert tokens[6].tolist() == expected


def test_unpatchify_reads_each_token_channel_last() -> None:
    latent = coded_latent(3, 2, 4, 6)
    assert torch.equal(unpatchify(channel_last_tokens(latent), tuple(latent.shape), PATCH), latent)
    # The input order is not the output order: reading input-ordered patches back scrambles them.
    assert not torch.equal(unpatchify(patchify(latent, PATCH), tuple(latent.shape), PATCH), latent)


def test_patchify_refuses_a_latent_that_does_not_split_into_patches() -> None:
    with pytest.raises(ValueError, match="does not split"):
        patchify(torch.zeros(48, 2, 3, 4), PATCH)


def test_pack_lays_jobs_out_one_after_another_video_audio_text() -> None:
    first, second = make_sample(2, 4, 4, 5, seed=0), make_sample(1, 2, 6, 3, seed=1, audio=4)
    batch = pack([first, second], PackingConfig())
    layout = [VIDEO] * 8 + [AUDIO] * 5 + [TEXT] * 5 + [VIDEO] * 3 + [AUDIO] * 4 + [TEXT] * 3
    assert batch.modality.tolist() == layout
    assert batch.cu_seqlens == [0, 18, 28]
    assert [(span.video_tokens, span.frames) for span in batch.spans] == [(8, 2), (3, 1)]
    video_rows = batch.modality.eq(VIDEO).nonzero().flatten()
    assert torch.equal(torch.arange(28)[batch.rows[VIDEO]], video_rows)
    assert torch.equal(batch.text_tokens, torch.cat([first.text, second.text]))
    assert torch.equal(batch.video_tokens[:8], patchify(first.video, PATCH))
    # One job's modalities are contiguous: plain slices, no index gathers.
    single = pack([first], PackingConfig())
    assert single.rows == (slice(0, 8), slice(8, 13), slice(13, 18))


def test_unpack_returns_each_jobs_latent_shaped_output() -> None:
    samples = [make_sample(2, 4, 4, 5, seed=0), make_sample(3, 2, 2, 2, seed=1)]
    batch = pack(samples, PackingConfig())
    video_out = torch.cat([channel_last_tokens(sample.video) for sample in samples])
    audio_out = torch.cat([sample.audio for sample in samples])
    for (video, audio), sample in zip(unpack(batch, video_out, audio_out), samples, strict=True):
        assert torch.equal(video, sample.video)
        assert torch.equal(audio, sample.audio)


def test_v2_positions_centre_the_picture_quarter_the_audio_and_zero_the_text() -> None:
    coords = sample_coords((2, 4, 2), audio_tokens=9, text_tokens=3, config=PackingConfig(coords_style="v2"))
    video, audio, text = coords[:16], coords[16:25], coords[25:]
    assert video[:8, 0].tolist() == [0.0] * 8 and video[8:, 0].tolist() == [1.0] * 8
    assert sorted(set(video[:, 1].tolist())) == [-1.5, -0.5, 0.5, 1.5]
    assert sorted(set(video[:, 2].tolist())) == [-0.5, 0.5]
    # 9 audio latents span the 3 latent frames they go with: time scaled by (3 - 1) / (9 - 1).
    assert torch.allclose(audio[:, 0], torch.arange(9.0) * 0.25)
    assert audio[:, 1:].abs().sum() == 0
    assert text.abs().sum() == 0


def test_v1_positions_stretch_audio_over_the_video_frames_and_text_over_one() -> None:
    config = PackingConfig(coords_style="v1")
    coords = sample_coords((3, 2, 2), audio_tokens=5, text_tokens=3, config=config)
    audio, text = coords[12:17, 0], coords[17:, 0]
    assert torch.allclose(audio, torch.arange(5.0) * 0.5)
    assert torch.allclose(text, torch.tensor([0.0, 0.5, 1.0]))


def test_pack_refuses_an_empty_batch() -> None:
    with pytest.raises(ValueError, match="at least one"):
        pack([], PackingConfig())


def test_a_job_without_text_packs_without_text_rows() -> None:
    sample = make_sample(1, 2, 2, 0, seed=0)
    batch = pack([SampleInput(sample.video, sample.audio, sample.text)], PackingConfig())
    assert batch.rows[TEXT] is None and batch.num_tokens == 1 + 1
