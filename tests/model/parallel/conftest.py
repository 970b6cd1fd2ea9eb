"""The single-process reference frames the parallel-group tests compare against.

Rank 0 is the pytest process; the other ranks are spawned processes running
`model.parallel.rank_main`. One group at a time per process, so each test module owns one group.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.backends import create_backend
from tests.support.parallel import JOBS, base_spec, engine_frames


@pytest.fixture(scope="session")
def reference() -> dict[str, list[np.ndarray]]:
    """Single-process frames of `JOBS`: through the engine, and through the stock pipeline."""
    torch.set_num_threads(1)
    backend = create_backend(base_spec())
    return {"engine": engine_frames(backend, JOBS), "stock": [backend.generate(j).frames for j in JOBS]}
