"""Tiny MagiHuman models for the package's tests, built once per module."""

from __future__ import annotations

import pytest

from model.backends.magihuman.components import (
    MagiHumanComponents,
    build_tiny_components,
    build_tiny_transformer,
)
from model.backends.magihuman.transformer import MagiHumanTransformer


@pytest.fixture(scope="module")
def tiny_transformer() -> MagiHumanTransformer:
    return build_tiny_transformer(0)


@pytest.fixture(scope="module")
def tiny_local_transformer() -> MagiHumanTransformer:
    return build_tiny_transformer(1, local_attention=True)


@pytest.fixture(scope="module")
def tiny_components() -> MagiHumanComponents:
    return build_tiny_components(0)
