"""Input media for load tests: synthetic images and videos made locally, or files from disk.

A profile names media as `synthetic:WxH` or a file path. Synthetic pictures are smooth gradients
with a little texture, saved as JPEG, so a 720P first frame weighs what a photo does (a few
hundred KB), not megabytes of incompressible noise. Synthetic videos are H.264 MP4s (PyAV).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SYNTHETIC = re.compile(r"synthetic:(\d+)x(\d+)")
VIDEO_FPS = 24
_IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Medium:
    """Bytes ready to send, and their content type."""

    data: bytes
    content_type: str

    def data_uri(self) -> str:
        """`data:<type>;base64,...`: how an image travels inside the create body."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def _frames(width: int, height: int, seed: int, count: int) -> Iterator[np.ndarray]:
    """uint8 [height, width, 3] pictures: a diagonal gradient that drifts from one to the next,
    plus mild fixed noise (the noise and the grid are drawn once, so a video is cheap to make)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    grid = (x / max(width, 1) + y / max(height, 1))[..., None] * 127.0 + rng.uniform(0, 255, 3).astype(
        np.float32
    )
    noise = rng.normal(0.0, 6.0, (height, width, 3)).astype(np.float32)
    for i in range(count):
        yield np.clip((grid + i * 127.0 / VIDEO_FPS) % 255.0 + noise, 0, 255).astype(np.uint8)


def synthetic_image(width: int, height: int, seed: int = 0) -> Medium:
    """A JPEG of `width` x `height`."""
    buf = io.BytesIO()
    Image.fromarray(next(_frames(width, height, seed, 1))).save(buf, format="JPEG", quality=90)
    return Medium(buf.getvalue(), "image/jpeg")


def synthetic_video(width: int, height: int, seconds: float, seed: int = 0) -> Medium:
    """An H.264 MP4 (yuv420p, 24 fps) of a moving gradient, `seconds` long."""
    if width % 2 or height % 2:
        raise ValueError(f"a synthetic video needs even sides, got {width}x{height}")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, VIDEO_FPS)
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for i, pixels in enumerate(_frames(width, height, seed, round(seconds * VIDEO_FPS))):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Medium(buf.getvalue(), "video/mp4")


def load_image(spec: str, seed: int = 0) -> Medium:
    """`synthetic:WxH` or a path to a JPEG, PNG or WEBP file."""
    match = SYNTHETIC.fullmatch(spec)
    if match:
        return synthetic_image(int(match[1]), int(match[2]), seed)
    data = Path(spec).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            content_type = _IMAGE_TYPES.get(image.format or "")
    except OSError:
        content_type = None
    if content_type is None:
        raise ValueError(f"{spec}: not a JPEG, PNG or WEBP image")
    return Medium(data, content_type)


def load_video(spec: str, seconds: float, seed: int = 0) -> Medium:
    """`synthetic:WxH` (`seconds` long) or a path to an MP4 or MOV file."""
    match = SYNTHETIC.fullmatch(spec)
    if match:
        return synthetic_video(int(match[1]), int(match[2]), seconds, seed)
    path = Path(spec)
    content_type = "video/quicktime" if path.suffix.lower() == ".mov" else "video/mp4"
    return Medium(path.read_bytes(), content_type)
