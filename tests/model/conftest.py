"""Fixtures for the model tests: one generator (tiny default registry) for the whole run."""

from __future__ import annotations

import pytest

from model.generator import VideoGenerator
from model.registry import default_registry


@pytest.fixture(scope="session")
def generator() -> VideoGenerator:
    gen = VideoGenerator(default_registry())
    gen.warm_up()
    return gen
