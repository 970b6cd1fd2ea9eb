"""Helpers to make test media in code and to inspect downloaded videos."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw


def make_image(width: int, height: int, fmt: str = "PNG", seed: int = 0) -> bytes:
    """A picture with some structure (gradient + shapes), encoded as `fmt`."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    arr = np.concatenate(
        [x.repeat(height, 0), y.repeat(width, 1), np.full((height, width, 1), 128.0)], axis=2
    )
    img = Image.fromarray(arr.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        draw.ellipse(
            [x0, y0, x0 + width // 3, y0 + height // 3], fill=tuple(int(v) for v in rng.integers(0, 255, 3))
        )
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def make_video(
    width: int, height: int, seconds: float, fps: int = 12, *, tone_hz: float | None = None
) -> bytes:
    """An H.264 MP4 (optionally with an AAC sine tone) made in memory."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        audio = None
        if tone_hz is not None:
            audio = container.add_stream("aac", rate=48000)
            audio.layout = "stereo"
        n = round(seconds * fps)
        for i in range(n):
            frame = np.full((height, width, 3), (i * 7) % 255, dtype=np.uint8)
            frame[:, : width // 2, 1] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            _write_tone(container, audio, seconds, tone_hz or 440.0)
    return buf.getvalue()


def _write_tone(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float, hz: float
) -> None:
    rate = 48000
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    chunk = 1024
    for start in range(0, len(wave), chunk):
        part = np.stack([wave[start : start + chunk]] * 2)
        frame = av.AudioFrame.from_ndarray(part, format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


@dataclass
class VideoProbe:
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    audio_codec: str | None
    frames: np.ndarray  # [F, H, W, 3] uint8


def probe_video(data: bytes) -> VideoProbe:
    """Decode every frame of an MP4 and report what a player would see."""
    with av.open(io.BytesIO(data)) as container:
        vs = container.streams.video[0]
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(vs)])
        return VideoProbe(
            codec=vs.codec_context.name,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            fps=float(vs.average_rate),
            frame_count=len(frames),
            audio_codec=audio,
            frames=frames,
        )


def watermark_contrast(with_mark: np.ndarray, without: np.ndarray) -> tuple[float, float]:
    """Share of pixels that clearly differ (mean |diff| > 48) inside the bottom-right corner
    (last 15% of rows, last 40% of columns) and everywhere else."""
    _, h, w, _ = with_mark.shape
    changed = np.abs(with_mark.astype(np.int16) - without.astype(np.int16)).mean(axis=3) > 48
    corner = np.zeros((h, w), dtype=bool)
    corner[int(h * 0.85) :, int(w * 0.6) :] = True
    inside = changed[:, corner].mean()
    outside = changed[:, ~corner].mean()
    return float(inside), float(outside)


def watermark_present(frames: np.ndarray) -> bool:
    """The static white "Happy Horse" text: pixels that stay near-white in every frame, found in
    the bottom-right corner and nowhere else."""
    _, h, w, _ = frames.shape
    steady_white = (frames > 215).all(axis=(0, 3))
    corner = np.zeros((h, w), dtype=bool)
    corner[int(h * 0.85) :, int(w * 0.6) :] = True
    return bool(steady_white[corner].mean() > 0.01 and steady_white[~corner].mean() < 0.001)


def assert_delivered(
    data: bytes, width: int, height: int, frames: int, *, watermark: bool = True
) -> VideoProbe:
    """What every delivered video must be (API.md §2): H.264, 24 fps, exact size and frame count,
    an AAC track, and the watermark exactly when asked for."""
    video = probe_video(data)
    assert (video.codec, video.width, video.height) == ("h264", width, height)
    assert video.fps == 24 and video.frame_count == frames
    assert video.audio_codec == "aac"
    assert watermark_present(video.frames) is watermark
    return video
