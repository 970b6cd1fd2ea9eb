"""Thumbnails and spritesheets of a video: the right frames, in order, at the right sizes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from server.media.previews import SPRITE_COLUMNS, SPRITE_FRAMES, spritesheet_jpeg, thumbnail_webp
from tests.videos import make_video

FPS, SECONDS = 12, 4  # frame i has gray level (i * 7) % 255 in its right half (tests/videos.py)


def gray(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    return float(np.asarray(image.convert("RGB").crop(box))[..., 0].mean())


def test_the_thumbnail_is_the_middle_frame_as_webp() -> None:
    thumb = Image.open(io.BytesIO(thumbnail_webp(make_video(640, 360, SECONDS, fps=FPS))))
    assert thumb.format == "WEBP" and thumb.size == (640, 360)
    middle = (SECONDS * FPS // 2) * 7 % 255
    assert abs(gray(thumb, (400, 100, 600, 300)) - middle) < 6


def test_the_spritesheet_tiles_frames_evenly_in_reading_order() -> None:
    sheet = Image.open(io.BytesIO(spritesheet_jpeg(make_video(640, 360, SECONDS, fps=FPS))))
    tile_w, tile_h = 256, 144
    rows = SPRITE_FRAMES // SPRITE_COLUMNS
    assert sheet.format == "JPEG" and sheet.size == (tile_w * SPRITE_COLUMNS, tile_h * rows)
    levels = []
    for i in range(SPRITE_FRAMES):
        left, top = (i % SPRITE_COLUMNS) * tile_w, (i // SPRITE_COLUMNS) * tile_h
        levels.append(gray(sheet, (left + 170, top + 40, left + 240, top + 100)))
    total = SECONDS * FPS
    expected = [int((k + 0.5) * total / SPRITE_FRAMES + 0.999) * 7 % 255 for k in range(SPRITE_FRAMES)]
    assert np.allclose(levels, expected, atol=8), (levels, expected)
