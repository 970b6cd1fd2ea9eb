"""Inspecting written MP4s: top-level boxes, stream facts, decoded sound."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (ftyp, moov, mdat, ...)."""
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:  # 64-bit size follows the type
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:  # box runs to the end of the file
            size = len(data) - pos
        boxes.append(kind.decode("latin-1"))
        pos += size
    return boxes


@dataclass
class Mp4Facts:
    codec: str
    width: int
    height: int
    fps: float
    frames: np.ndarray  # uint8 [N, H, W, 3]
    video_seconds: float
    audio_codec: str | None
    audio_seconds: float
    audio: np.ndarray  # float32 [channels, samples]
    audio_rate: int


def read_mp4(path: Path) -> Mp4Facts:
    """Decode every video frame and the whole audio track of `path`."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(vs)])
        ctx = vs.codec_context
        video = dict(
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            fps=float(vs.average_rate),
            video_seconds=float(vs.duration * vs.time_base),
        )
    audio_codec, audio_seconds, rate = None, 0.0, 0
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            audio_codec, rate = stream.codec_context.name, stream.rate
            audio_seconds = float(stream.duration * stream.time_base)
            chunks = [f.to_ndarray() for f in container.decode(stream)]
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    return Mp4Facts(
        frames=frames,
        audio_codec=audio_codec,
        audio_seconds=audio_seconds,
        audio=audio,
        audio_rate=rate,
        **video,
    )


def rms(samples: np.ndarray) -> float:
    """Root mean square of a waveform (0.0 for an empty one)."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
