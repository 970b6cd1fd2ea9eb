"""What the worker hands the model side, and what it gets back. Torch-free.

The worker (`server.worker.runner`) imports only this module and the registry from model/, so it
never loads torch through them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model.registry import TaskFamily


@dataclass(frozen=True)
class GenerationRequest:
    """One video to generate, with every choice already made by the facade.

    Media arrive as encoded bytes (PNG/JPEG/WEBP images, an MP4/MOV video) exactly as the
    client sent them; the backend decodes them. `width`/`height`/`duration_s` are the
    delivered video's size and length (API.md §2), not the backend's native ones.
    """

    task_id: str
    model: str
    family: TaskFamily
    prompt: str
    width: int
    height: int
    duration_s: float
    seed: int
    watermark: bool = True
    first_frame: bytes | None = None
    reference_images: tuple[bytes, ...] = ()
    video: bytes | None = None
    keep_source_audio: bool = False


@dataclass(frozen=True)
class GenerationResult:
    """A finished MP4 on local disk, ready to upload."""

    path: Path
    width: int
    height: int
    fps: int
    frame_count: int
    duration_s: float
    has_audio: bool = True
    timings: dict[str, float] = field(default_factory=dict)


class EngineShutdown(Exception):
    """The engine stopped before this job was admitted; nothing ran (the worker hands it back)."""
