"""Packing jobs into one transformer input, and the transformer's output back into jobs.

Each job contributes `[video | audio | text]` rows; jobs follow one another, so one forward
serves jobs of different sizes and prompt lengths. Video latents are cut into patches packed
**channel-major** `(C pT pH pW)`, but the transformer emits patches **channel-last**
`(pT pH pW C)`; getting either order wrong turns the output into noise.

Positions (the RoPE input) follow the original's data proxy: video (t, h, w) with h and w
centred; in coords style "v2" (base and distilled DiTs) audio time is scaled by about 1/4 to
line up with latent frames and text sits at time 0; in "v1" (the SR DiTs) audio spans the video's
latent frames and text spans [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch

from model.backends.magihuman.attention import SampleSpan
from model.backends.magihuman.config import AUDIO, NUM_MODALITIES, PATCH_SIZE, TEXT, VIDEO
from model.backends.magihuman.layers import Rows


@dataclass(frozen=True)
class PackingConfig:
    """How a DiT wants its input laid out (the original's `DataProxyConfig`)."""

    patch_size: tuple[int, int, int] = PATCH_SIZE
    coords_style: Literal["v1", "v2"] = "v2"
    frame_receptive_field: int = 11  # latent frames each side, for frame-local layers
    text_offset: int = 0  # first text position in coords style v1


@dataclass(frozen=True)
class SampleInput:
    """One job's state at one step: video latent [C, T, H, W], audio latent [A, C_audio] and the
    prompt's real text-encoder tokens [L, C_text] (no padding)."""

    video: torch.Tensor
    audio: torch.Tensor
    text: torch.Tensor


@dataclass(frozen=True)
class JobLayout:
    """Where one job sits in a packed batch, and the shapes to restore its output to."""

    span: SampleSpan
    latent_shape: tuple[int, int, int, int]  # the video latent's (C, T, H, W)
    audio_tokens: int
    text_tokens: int


@dataclass(frozen=True)
class PackedBatch:
    """Several jobs as one packed sequence, plus what is needed to undo the packing."""

    video_tokens: torch.Tensor  # [video rows, C pT pH pW]
    audio_tokens: torch.Tensor  # [audio rows, C_audio]
    text_tokens: torch.Tensor  # [text rows, C_text]
    modality: torch.Tensor  # int64 [tokens]: VIDEO, AUDIO or TEXT per packed row
    rows: tuple[Rows, ...]  # packed rows of each modality
    coords: torch.Tensor  # fp32 [tokens, 3]: RoPE position of each row
    jobs: tuple[JobLayout, ...]
    patch_size: tuple[int, int, int]
    frame_receptive_field: int

    @property
    def num_tokens(self) -> int:
        return int(self.modality.shape[0])

    @property
    def spans(self) -> tuple[SampleSpan, ...]:
        return tuple(job.span for job in self.jobs)

    @property
    def cu_seqlens(self) -> list[int]:
        """Row boundaries of the jobs: job i has rows cu_seqlens[i] .. cu_seqlens[i + 1]."""
        return [0, *(job.span.end for job in self.jobs)]

    def as_inputs(self) -> dict[str, Any]:
        """The batch as keyword inputs: tensors and small picklable values, which a parallel
        group broadcasts to its ranks (`rows` are left out: `from_inputs` rebuilds them)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rows"}

    @classmethod
    def from_inputs(cls, inputs: dict[str, Any]) -> PackedBatch:
        """The inverse of `as_inputs`."""
        return cls(**inputs, rows=modality_rows(inputs["modality"]))


def patchify(latent: torch.Tensor, patch_size: tuple[int, int, int]) -> torch.Tensor:
    """[C, T, H, W] -> [T/pT * H/pH * W/pW, C*pT*pH*pW], tokens in (t, h, w) order, each token's
    features channel-major (C, pT, pH, pW), as the original's unfold gives them."""
    channels, frames, height, width = latent.shape
    pt, ph, pw = patch_size
    if frames % pt or height % ph or width % pw:
        raise ValueError(f"latent {tuple(latent.shape)} does not split into {patch_size} patches")
    x = latent.reshape(channels, frames // pt, pt, height // ph, ph, width // pw, pw)
    return x.permute(1, 3, 5, 0, 2, 4, 6).reshape(-1, channels * pt * ph * pw)


def unpatchify(
    tokens: torch.Tensor, shape: tuple[int, int, int, int], patch_size: tuple[int, int, int]
) -> torch.Tensor:
    """The transformer's video output [tokens, pT*pH*pW*C] (channel-last) -> [C, T, H, W]."""
    channels, frames, height, width = shape
    pt, ph, pw = patch_size
    x = tokens.reshape(frames // pt, height // ph, width // pw, pt, ph, pw, channels)
    return x.permute(6, 0, 3, 1, 4, 2, 5).reshape(shape)


def _axis_coords(size: int, ref: int, offset: float, centred: bool) -> torch.Tensor:
    """Positions 0..size-1 (+ offset) along one axis, centred if asked, scaled by
    (ref - 1) / (size - 1) (1 when both are 1), in the original's fp32 order of operations."""
    positions = torch.arange(size, dtype=torch.float32) + offset
    if centred:
        positions = positions - torch.tensor((size - 1) / 2, dtype=torch.float32)
    if size == 1:
        # The original divides by zero here unless ref == 1 too; a one-token axis has no extent.
        return positions
    scale = torch.tensor(ref - 1, dtype=torch.float32) / torch.tensor(size - 1, dtype=torch.float32)
    return positions * scale


def _grid(t: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    grid = torch.meshgrid(t, h, w, indexing="ij")
    return torch.stack(grid, dim=-1).reshape(-1, 3)


def sample_coords(
    grid: tuple[int, int, int], audio_tokens: int, text_tokens: int, config: PackingConfig
) -> torch.Tensor:
    """RoPE positions [video + audio + text, 3] of one job, on the CPU in fp32.

    `grid` is the video's token grid (T/pT, H/pH, W/pW).
    """
    frames, height, width = grid
    video = _grid(
        _axis_coords(frames, frames, 0, centred=False),
        _axis_coords(height, height, 0, centred=True),
        _axis_coords(width, width, 0, centred=True),
    )
    point = torch.zeros(1)
    if config.coords_style == "v2":
        audio_ref = ((audio_tokens - 1) // 4 + 1) // config.patch_size[0]
        audio_t = _axis_coords(audio_tokens, audio_ref, 0, centred=False)
        text_t = _axis_coords(text_tokens, 1, -text_tokens, centred=False)
    else:
        audio_t = _axis_coords(audio_tokens, frames, 0, centred=False)
        text_t = _axis_coords(text_tokens, 2, config.text_offset, centred=False)
    return torch.cat((video, _grid(audio_t, point, point), _grid(text_t, point, point)))


def _rows(indices: list[torch.Tensor], device: torch.device) -> Rows:
    index = torch.cat(indices)
    if index.numel() == 0:
        return None
    first, last = int(index[0]), int(index[-1])
    if last - first + 1 == index.numel():
        return slice(first, last + 1)
    return index.to(device)


def modality_rows(modality: torch.Tensor) -> tuple[Rows, ...]:
    """The rows of each modality in a sequence whose row i has modality `modality[i]`."""
    return tuple(
        _rows([(modality == kind).nonzero().flatten()], modality.device) for kind in range(NUM_MODALITIES)
    )


def pack(samples: Sequence[SampleInput], config: PackingConfig) -> PackedBatch:
    """Pack jobs, in order, into one transformer input on the jobs' device."""
    if not samples:
        raise ValueError("pack needs at least one sample")
    device = samples[0].video.device
    video, audio, text, modality, coords, jobs = [], [], [], [], [], []
    where: dict[int, list[torch.Tensor]] = {VIDEO: [], AUDIO: [], TEXT: []}
    start = 0
    for sample in samples:
        tokens = patchify(sample.video, config.patch_size)
        channels, frames, height, width = sample.video.shape
        grid = (frames // config.patch_size[0], height // config.patch_size[1], width // config.patch_size[2])
        counts = {VIDEO: tokens.shape[0], AUDIO: sample.audio.shape[0], TEXT: sample.text.shape[0]}
        offset = start
        for kind in (VIDEO, AUDIO, TEXT):
            where[kind].append(torch.arange(offset, offset + counts[kind]))
            modality.append(torch.full((counts[kind],), kind, dtype=torch.int64))
            offset += counts[kind]
        video.append(tokens)
        audio.append(sample.audio)
        text.append(sample.text)
        coords.append(sample_coords(grid, counts[AUDIO], counts[TEXT], config))
        span = SampleSpan(start, offset - start, counts[VIDEO], grid[0])
        jobs.append(JobLayout(span, (channels, frames, height, width), counts[AUDIO], counts[TEXT]))
        start = offset
    return PackedBatch(
        video_tokens=torch.cat(video),
        audio_tokens=torch.cat(audio),
        text_tokens=torch.cat(text),
        modality=torch.cat(modality).to(device),
        rows=tuple(_rows(where[kind], device) for kind in range(NUM_MODALITIES)),
        coords=torch.cat(coords).to(device),
        jobs=tuple(jobs),
        patch_size=config.patch_size,
        frame_receptive_field=config.frame_receptive_field,
    )


def unpack(
    batch: PackedBatch, video_out: torch.Tensor, audio_out: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Split the transformer's video [video rows, pT*pH*pW*C] and audio [audio rows, C_audio]
    outputs into one (video [C, T, H, W], audio [A, C_audio]) pair per job."""
    results = []
    video_at = audio_at = 0
    for job in batch.jobs:
        video_rows = job.span.video_tokens
        video = unpatchify(video_out[video_at : video_at + video_rows], job.latent_shape, batch.patch_size)
        results.append((video, audio_out[audio_at : audio_at + job.audio_tokens]))
        video_at += video_rows
        audio_at += job.audio_tokens
    return results
