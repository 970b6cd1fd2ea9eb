"""model.video: decoding inputs and resampling native frames to the output grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model.video import (
    decode_audio,
    decode_image,
    decode_video,
    fit_image,
    output_frame_count,
    resample,
    shrink_image,
    temporal_index,
)
from tests.support.mp4 import rms
from tests.videos import make_image, make_video


def test_resample_gives_exact_size_and_count() -> None:
    native = np.random.default_rng(0).random((41, 64, 96, 3), dtype=np.float32)
    track = resample(native, 8, 320, 192, 120)
    assert len(track) == 120
    assert (track.width, track.height) == (320, 192)
    assert track.to_array().shape == (120, 192, 320, 3)
    assert track.frames.dtype == np.uint8
    # only the native frames actually shown are kept
    assert track.frames.shape[0] == len(np.unique(temporal_index(41, 8, 120)))


def test_temporal_rule_is_nearest_native_frame_clamped() -> None:
    # output frame i at t = i/24 takes native floor(t * 8 + 0.5)
    assert temporal_index(41, 8, 7).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert temporal_index(3, 8, 24).tolist()[-4:] == [2, 2, 2, 2]  # clamped at the last native frame
    assert temporal_index(10, 24, 10).tolist() == list(range(10))  # same rate: identity


def test_resample_keeps_native_frame_content() -> None:
    native = np.stack([np.full((16, 16, 3), v, np.uint8) for v in (0, 100, 200)])
    track = resample(native, 8, 64, 32, 9)
    means = [int(frame.mean()) for frame in track]
    assert means == [0, 0, 100, 100, 100, 200, 200, 200, 200]


def test_resample_rejects_empty() -> None:
    with pytest.raises(ValueError):
        resample(np.zeros((0, 8, 8, 3), np.float32), 8, 16, 16, 4)


def test_output_frame_count() -> None:
    assert output_frame_count(5) == 120
    assert output_frame_count(3.02) == 72
    assert output_frame_count(15) == 360


def test_decode_fit_and_shrink_image() -> None:
    image = decode_image(make_image(640, 360, "JPEG"))
    assert image.mode == "RGB" and image.size == (640, 360)
    assert fit_image(image, 96, 64).size == (96, 64)
    small = shrink_image(image, 96, 64)
    assert small.size[0] <= 96 and small.size[1] <= 64
    assert abs(small.size[0] / small.size[1] - 640 / 360) < 0.1


def test_fit_image_crops_not_stretches() -> None:
    img = Image.new("RGB", (300, 100), (255, 0, 0))
    img.paste((0, 0, 255), (100, 0, 200, 100))  # blue middle third
    buf = io.BytesIO()
    img.save(buf, "PNG")
    fitted = np.asarray(fit_image(decode_image(buf.getvalue()), 32, 32))
    assert fitted[..., 2].mean() > 240  # the square crop is the blue centre


def test_decode_video_samples_at_native_fps() -> None:
    # make_video: frame i has grey level (i * 7) % 255 on the right half; 12 fps source
    data = make_video(64, 48, 2.0, fps=12)
    frames = decode_video(data, num_frames=9, fps=4, width=32, height=24)
    assert frames.shape == (9, 24, 32, 3)
    levels = frames[:, :, 20:, 0].mean(axis=(1, 2))
    expected = [((3 * i) * 7) % 255 for i in range(8)]  # native frame i shows source frame 3i
    assert np.allclose(levels[:8], expected, atol=6)
    # t = 2.0 s is past the source's last frame (23 at 1.917 s): that last frame is held
    assert np.allclose(levels[8], 23 * 7, atol=6)


def test_decode_video_rejects_non_video() -> None:
    with pytest.raises(Exception):  # noqa: B017 - PyAV raises its own error types for garbage
        decode_video(b"not a video", num_frames=1, fps=8, width=16, height=16)


def test_decode_audio_tone_and_silence() -> None:
    tone = decode_audio(make_video(64, 48, 2.0, tone_hz=440.0), 1.5)
    assert tone.shape == (2, 72_000)
    assert rms(tone) > 0.2
    silent = decode_audio(make_video(64, 48, 2.0), 1.5)
    assert silent.shape == (2, 72_000) and not silent.any()
    padded = decode_audio(make_video(64, 48, 1.0, tone_hz=440.0), 2.0)
    assert padded.shape == (2, 96_000) and not padded[:, 60_000:].any()
