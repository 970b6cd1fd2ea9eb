"""The tiny TI2V backend the engine tests run on."""

from __future__ import annotations

from typing import Any

import pytest

from model.backends import create_backend
from model.backends.base import Backend
from tests.support.specs import tiny_spec


@pytest.fixture(scope="module")
def ti2v() -> Backend[Any]:
    return create_backend(tiny_spec("wan-ti2v"))
