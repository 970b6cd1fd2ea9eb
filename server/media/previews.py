"""Still previews of a finished video: a thumbnail (one frame) and a spritesheet (a grid of frames
sampled evenly over its length), as the OpenAI surface's `variant=thumbnail|spritesheet` serve them.

One decoding pass with PyAV, keeping only the frames that are picked, so memory stays at a few
frames whatever the video's length.
"""

from __future__ import annotations

import io
import math

import av
from PIL import Image

from server.media.videos import stream_duration_s

THUMBNAIL_LONG_SIDE = 1280
SPRITE_FRAMES = 16
SPRITE_COLUMNS = 4
SPRITE_LONG_SIDE = 256  # of each tile


def thumbnail_webp(video: bytes) -> bytes:
    """The frame at the middle of `video`, as WebP, its long side at most THUMBNAIL_LONG_SIDE."""
    (frame,) = _frames_at(video, [0.5])
    frame.thumbnail((THUMBNAIL_LONG_SIDE, THUMBNAIL_LONG_SIDE))
    out = io.BytesIO()
    frame.save(out, format="WEBP", quality=85)
    return out.getvalue()


def spritesheet_jpeg(video: bytes, frames: int = SPRITE_FRAMES, columns: int = SPRITE_COLUMNS) -> bytes:
    """`frames` frames at evenly spaced times (the middle of each 1/frames of the video), in rows of
    `columns` tiles, left to right then top to bottom, as one JPEG."""
    tiles = _frames_at(video, [(i + 0.5) / frames for i in range(frames)])
    for tile in tiles:
        tile.thumbnail((SPRITE_LONG_SIDE, SPRITE_LONG_SIDE))
    width, height = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (width * columns, height * rows))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * width, (i // columns) * height))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _frames_at(video: bytes, fractions: list[float]) -> list[Image.Image]:
    """The first frame at or after each fraction of the video's duration (fractions ascending);
    the last frame stands in for any fraction past the end."""
    with av.open(io.BytesIO(video), mode="r") as container:
        stream = container.streams.video[0]
        duration = stream_duration_s(container, stream)
        targets = [f * duration for f in fractions]
        picked: list[Image.Image] = []
        last: av.VideoFrame | None = None
        for frame in container.decode(stream):
            last = frame
            seconds = float(frame.time or 0.0)
            while len(picked) < len(targets) and seconds >= targets[len(picked)]:
                picked.append(_image(frame))
            if len(picked) == len(targets):
                return picked
        if last is None:
            raise ValueError("the video has no frames")
        tail = _image(last)
        return picked + [tail.copy() for _ in targets[len(picked) :]]


def _image(frame: av.VideoFrame) -> Image.Image:
    return Image.fromarray(frame.to_ndarray(format="rgb24"))
