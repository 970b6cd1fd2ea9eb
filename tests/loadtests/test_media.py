"""Synthetic media: real JPEGs and MP4s of the asked size, light enough to send in a body."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import av
import pytest
from PIL import Image

from loadtests.media import load_image, load_video, synthetic_image


def test_synthetic_image_is_a_jpeg_of_the_asked_size() -> None:
    medium = load_image("synthetic:1280x720", seed=1)
    with Image.open(io.BytesIO(medium.data)) as image:
        assert (image.format, image.size) == ("JPEG", (1280, 720))
    assert len(medium.data) < 1_000_000  # like a photo, not megabytes of noise
    uri = medium.data_uri()
    assert uri.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == medium.data
    assert synthetic_image(64, 64, seed=1).data != synthetic_image(64, 64, seed=2).data


def test_image_files_are_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "picture.bin"
    Image.new("RGB", (320, 320), "red").save(path, format="PNG")
    assert load_image(str(path)).content_type == "image/png"
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ValueError, match="not a JPEG, PNG or WEBP"):
        load_image(str(tmp_path / "notes.txt"))


def test_synthetic_video_is_an_h264_mp4_of_the_asked_size_and_length() -> None:
    medium = load_video("synthetic:640x360", seconds=3.0)
    assert medium.content_type == "video/mp4"
    with av.open(io.BytesIO(medium.data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 640, 360)
        assert frames == 72 and stream.average_rate == 24
    with pytest.raises(ValueError, match="even sides"):
        load_video("synthetic:641x360", seconds=1.0)
