"""The shipped sample first frame: paddock's own drawing, and a valid first frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from server.api.web.sample import SAMPLE_PATH, SIZE, draw_sample, write_sample
from server.media import FIRST_FRAME_RULE, inspect_image


def test_the_shipped_file_is_the_drawing() -> None:
    shipped = np.asarray(Image.open(SAMPLE_PATH).convert("RGB"), dtype=np.float32)
    drawn = np.asarray(draw_sample(), dtype=np.float32)
    assert shipped.shape == drawn.shape == (SIZE[1], SIZE[0], 3)
    # JPEG is lossy: close to the drawing everywhere, not equal to it.
    assert np.abs(shipped - drawn).mean() < 2.0


def test_the_sample_passes_every_first_frame_rule() -> None:
    data = SAMPLE_PATH.read_bytes()
    info = inspect_image(data, FIRST_FRAME_RULE, field="input.media[0]", max_pixels=100_000_000)
    assert (info.format, info.width, info.height) == ("jpeg", *SIZE)
    assert len(data) < 200_000  # small enough for a data URI on a command line


def test_redrawing_writes_the_same_picture(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "sample.jpg")
    redrawn = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    shipped = np.asarray(Image.open(SAMPLE_PATH).convert("RGB"), dtype=np.float32)
    assert np.abs(redrawn - shipped).mean() < 1.0
