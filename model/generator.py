"""The seam the worker calls: a GenerationRequest in, a finished MP4 on disk out.

Backends load lazily (one instance per backend + checkpoint + placement, shared by every model
name that maps to it); the rest is decode inputs -> native frames -> 24 fps output -> MP4.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from model.backends import create_backend
from model.backends.base import Backend
from model.encode import apply_watermark, write_mp4
from model.engine.engine import Engine, StepObserver
from model.parallel import BackendFactory, ParallelGroup, world_size
from model.registry import ModelSpec, TaskFamily
from model.request import GenerationRequest, GenerationResult
from model.step import NativeClip, NativeJob, ProgressFn
from model.video import (
    AUDIO_RATE,
    OUTPUT_FPS,
    decode_audio,
    decode_image,
    decode_video,
    fit_image,
    output_frame_count,
    resample,
    shrink_image,
)

BackendKey = tuple[str, str | None, tuple[str, ...], str, int, bool, str]


class GroupFactory(Protocol):
    """Starts ranks 1..N-1 of a multi-device spec around rank 0's `backend`: `ParallelGroup`
    (local processes), or Ray actors in a replica."""

    def __call__(
        self, spec: ModelSpec, backend: Backend[Any], *, backend_factory: BackendFactory
    ) -> ParallelGroup: ...


def backend_key(spec: ModelSpec) -> BackendKey:
    """What makes two specs share one loaded backend: the weights, where they live, how they are
    split across ranks, and the options a backend applies at load (sampler, cache, tiny seed...).

    Per-request knobs (steps, guidance, native size and fps) stay out: they travel in the job.
    """
    options = json.dumps(spec.options, sort_keys=True, default=str)
    return (
        spec.backend,
        spec.checkpoint,
        spec.devices,
        spec.dtype,
        spec.ulysses_degree,
        spec.cfg_parallel,
        options,
    )


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


class VideoGenerator:
    """Turns GenerationRequests into MP4 files; thread-safe.

    Denoising goes through one `Engine`, which batches the steps of the jobs that concurrent
    `generate` calls bring; decoding the inputs, resampling and encoding run in the caller's
    thread. Backend loading is serialised by one lock.
    """

    def __init__(
        self,
        registry: dict[str, ModelSpec],
        *,
        max_running_jobs: int = 16,
        step_observer: StepObserver | None = None,
        group_factory: GroupFactory = ParallelGroup,
    ) -> None:
        self._registry = dict(registry)
        self._backends: dict[BackendKey, Backend[Any]] = {}
        self._groups: list[ParallelGroup] = []
        # How ranks 1..N-1 of a multi-device spec start: local processes, or Ray actors in a replica.
        self._group_factory = group_factory
        self._lock = threading.Lock()
        self.engine = Engine(max_running_jobs=max_running_jobs, observer=step_observer)

    def healthy(self) -> bool:
        """False once a rank of any multi-device group has died (Ray's `check_health` asks)."""
        return all(group.healthy() for group in self._groups)

    def close(self) -> None:
        """Stop the engine: jobs not yet admitted fail with `EngineShutdown`, running ones finish."""
        self.engine.shutdown(wait=True)
        for group in self._groups:
            group.close()

    def models(self) -> list[str]:
        """Every model name this generator serves."""
        return list(self._registry)

    def spec(self, model: str) -> ModelSpec:
        """The spec serving `model`; ValueError for a name not in the registry."""
        try:
            return self._registry[model]
        except KeyError:
            raise ValueError(f"unknown model {model!r}") from None

    def backend(self, model: str) -> Backend[Any]:
        """The loaded backend serving `model`, loading it on first use."""
        spec = self.spec(model)
        key = backend_key(spec)
        with self._lock:
            if key not in self._backends:
                backend = create_backend(spec)
                if world_size(spec) > 1:
                    # ranks 1..N-1 join; the group becomes the backend's forward runner
                    self._groups.append(self._group_factory(spec, backend, backend_factory=create_backend))
                self._backends[key] = backend
            return self._backends[key]

    def warm_up(self, names: Iterable[str] | None = None) -> None:
        """Load the backends of `names` (default: every registered model) now."""
        for name in self._registry if names is None else names:
            self.backend(name)

    def generate(
        self, request: GenerationRequest, out_dir: Path, *, progress: ProgressFn | None = None
    ) -> GenerationResult:
        """Generate `request` into `out_dir/<task_id>.mp4`.

        The file is request.width x request.height, 24 fps, exactly round(duration_s * 24)
        frames, H.264 + AAC (silence, or the source's sound for video-edit with
        keep_source_audio), watermarked when asked. `progress(step, total)` is called after
        every denoising step. Raises ValueError for an unknown model or missing media.
        """
        timings: dict[str, float] = {}
        spec = self.spec(request.model)
        with _timed(timings, "load_s"):
            backend = self.backend(request.model)
        with _timed(timings, "decode_s"):
            job = native_job(spec, request, progress)
        with _timed(timings, "generate_s"):
            clip = self.engine.run(backend, job)
        count = output_frame_count(request.duration_s)
        with _timed(timings, "resample_s"):
            track = resample(clip.frames, clip.fps, request.width, request.height, count)
        if request.watermark:
            with _timed(timings, "watermark_s"):
                apply_watermark(track.frames)  # the distinct frames: every output frame is one of them
        with _timed(timings, "audio_s"):
            audio, rate = output_audio(request, clip, count)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{request.task_id}.mp4"
        partial = path.with_name(f".{path.name}.part")  # never leave a half-written file under the real name
        with _timed(timings, "encode_s"):
            written = write_mp4(partial, track, audio=audio, sample_rate=rate)
            partial.replace(path)
        timings["total_s"] = sum(timings.values())
        timings.update({f"backend_{name}": value for name, value in clip.timings.items()})
        return GenerationResult(
            path=path,
            width=request.width,
            height=request.height,
            fps=OUTPUT_FPS,
            frame_count=written,
            duration_s=written / OUTPUT_FPS,
            has_audio=True,
            timings=timings,
        )


def native_job(spec: ModelSpec, request: GenerationRequest, progress: ProgressFn | None) -> NativeJob:
    """Decode the request's media and size everything for the backend's native grid."""
    width, height = spec.native_size(request.width, request.height)
    num_frames = spec.native_frames(request.duration_s)
    image = None
    if request.family is TaskFamily.I2V:
        if request.first_frame is None:
            raise ValueError("i2v needs a first_frame")
        # the output keeps the image's aspect (request size), so this crop only trims rounding
        image = fit_image(decode_image(request.first_frame), width, height)
    video = None
    if request.family is TaskFamily.VIDEO_EDIT:
        if request.video is None:
            raise ValueError("video-edit needs a video")
        video = decode_video(
            request.video, num_frames=num_frames, fps=spec.native_fps, width=width, height=height
        )
    references = tuple(shrink_image(decode_image(data), width, height) for data in request.reference_images)
    return NativeJob(
        family=request.family,
        prompt=request.prompt or "",
        width=width,
        height=height,
        num_frames=num_frames,
        fps=spec.native_fps,
        seed=request.seed,
        num_inference_steps=spec.num_inference_steps,
        guidance_scale=spec.guidance_scale,
        image=image,
        reference_images=references,
        video=video,
        progress=progress,
    )


def output_audio(
    request: GenerationRequest, clip: NativeClip, frame_count: int
) -> tuple[np.ndarray | None, int]:
    """The sound to mux, and its rate: the source's for video-edit with keep_source_audio, else
    the backend's, else None (the writer adds silence)."""
    seconds = frame_count / OUTPUT_FPS
    if request.family is TaskFamily.VIDEO_EDIT and request.keep_source_audio and request.video is not None:
        return decode_audio(request.video, seconds, AUDIO_RATE), AUDIO_RATE
    if clip.audio is not None and clip.sample_rate > 0:
        return clip.audio, clip.sample_rate
    return None, AUDIO_RATE
