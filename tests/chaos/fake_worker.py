"""`paddock worker` with the model swapped for a fast stand-in (`python -m tests.chaos.fake_worker`).

Everything else is the real worker: the CLI, settings, signal handling, JobRunner (slots,
heartbeats, fenced commits, hand-back) and the queue and object store. The stand-in sleeps through
`PADDOCK_FAKE_STEPS` steps of `PADDOCK_FAKE_STEP_S` seconds, reporting progress at each (where a
kill lands "mid-job"), and writes a small placeholder file: real tiny-model jobs cost about 8 CPU
seconds each, which a 100-job chaos run on 2 CI cores cannot afford.
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model.registry import ModelSpec
from model.request import GenerationRequest, GenerationResult


class FakeGenerator:
    """Stands in for `model.generator.VideoGenerator`."""

    def __init__(self, registry: dict[str, ModelSpec], **_: Any) -> None:
        self.registry = registry
        self.steps = int(os.environ.get("PADDOCK_FAKE_STEPS", "8"))
        self.step_s = float(os.environ.get("PADDOCK_FAKE_STEP_S", "0.15"))

    def warm_up(self) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to release."""

    def healthy(self) -> bool:
        return True

    def spec(self, model: str) -> ModelSpec:
        return self.registry[model]

    def models(self) -> list[str]:
        return list(self.registry)

    def generate(
        self,
        request: GenerationRequest,
        out_dir: Path,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> GenerationResult:
        """Sleep step by step, then write a placeholder named like the real output."""
        for step in range(1, self.steps + 1):
            time.sleep(self.step_s)
            if progress is not None:
                progress(step, self.steps)
        path = Path(out_dir) / f"{request.task_id}.mp4"
        path.write_bytes(b"paddock-chaos " + request.task_id.encode())
        return GenerationResult(
            path, request.width, request.height, 24, round(request.duration_s * 24), request.duration_s
        )


def _stub(name: str, **attrs: Any) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


def main() -> int:
    # The generator is replaced before the worker factory imports it: importing torch, diffusers
    # and transformers costs ~10 CPU seconds per process, which would dominate restart times here.
    # The runner itself needs only model.request, which is torch-free.
    _stub("model.generator", VideoGenerator=FakeGenerator)
    from server.cli import main as paddock

    return paddock(["worker"])


if __name__ == "__main__":
    sys.exit(main())
