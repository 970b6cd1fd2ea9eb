"""The 3-axis Fourier rotary embedding: time, height and width bands on 3/4 of each head.

Each token carries a 3-d position (already centred and scaled per modality by the packing), so
one table serves video, audio and text tokens of any number of samples. With head_dim 128 there
are 16 bands per axis (base 1e4) and the rotation covers the first 96 dims, pairing dim i with
dim i + 48; the last 32 dims pass through unrotated.
"""

from __future__ import annotations

import torch

ROPE_BASE = 10000.0


def fourier_bands(head_dim: int, device: torch.device | None = None) -> torch.Tensor:
    """The per-axis frequencies, head_dim // 8 of them, 1 / base^(i / n), in fp32.

    The original keeps them as a buffer (`adapter.rope.bands` in its checkpoints); they are not
    trained, so they are computed here, in the same order of float32 operations.
    """
    count = head_dim // 8
    exponents = torch.arange(0, count, 1, dtype=torch.int64, device=device).to(torch.float32) / count
    return 1.0 / (ROPE_BASE**exponents)


def rope_tables(coords: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sin and cos, each [tokens, 3 x bands], from positions [tokens, 3] (t, h, w)."""
    angles = coords.to(torch.float32).unsqueeze(-1) * fourier_bands(head_dim, coords.device)
    return angles.sin().flatten(1), angles.cos().flatten(1)


def apply_rope(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotate [tokens, heads, head_dim] by per-token angles; dims past 2 x sin's width stay put."""
    half = sin.shape[-1]
    sin, cos = sin.unsqueeze(1), cos.unsqueeze(1)
    first, second, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    return torch.cat((first * cos - second * sin, second * cos + first * sin, rest), dim=-1)
