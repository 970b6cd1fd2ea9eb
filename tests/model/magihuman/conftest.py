"""Tiny MagiHuman models and job inputs for the package's tests."""

from __future__ import annotations

import pytest
import torch

from model.backends.magihuman.components import (
    TINY_TEXT_WIDTH,
    MagiHumanComponents,
    build_tiny_components,
    build_tiny_transformer,
)
from model.backends.magihuman.config import AUDIO_LATENT_CHANNELS, LATENT_CHANNELS
from model.backends.magihuman.packing import SampleInput
from model.backends.magihuman.transformer import MagiHumanTransformer


def make_sample(
    frames: int, height: int, width: int, text_tokens: int, seed: int, audio: int | None = None
) -> SampleInput:
    """Random job state: a [48, frames, height, width] video latent, the matching audio latent
    ((frames - 1) x 4 + 1 tokens unless `audio` says otherwise) and `text_tokens` text features."""
    generator = torch.Generator().manual_seed(seed)
    audio_tokens = audio if audio is not None else (frames - 1) * 4 + 1
    return SampleInput(
        video=torch.randn(LATENT_CHANNELS, frames, height, width, generator=generator),
        audio=torch.randn(audio_tokens, AUDIO_LATENT_CHANNELS, generator=generator),
        text=torch.randn(text_tokens, TINY_TEXT_WIDTH, generator=generator),
    )


@pytest.fixture(scope="module")
def tiny_transformer() -> MagiHumanTransformer:
    return build_tiny_transformer(0)


@pytest.fixture(scope="module")
def tiny_local_transformer() -> MagiHumanTransformer:
    return build_tiny_transformer(1, local_attention=True)


@pytest.fixture(scope="module")
def tiny_components() -> MagiHumanComponents:
    return build_tiny_components(0)
