"""model.encode: the MP4 container facts, faststart, the watermark, the audio track."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.encode import apply_watermark, audio_samples, watermark_box, write_mp4
from model.video import FrameTrack
from tests.support.mp4 import read_mp4, rms, top_level_boxes

W, H, N = 320, 192, 36


def gradient_frames(n: int = N, width: int = W, height: int = H) -> np.ndarray:
    """Moving grey-ish gradients: compressible, different every frame."""
    x = np.linspace(40, 160, width, dtype=np.float32)[None, None, :, None]
    t = np.arange(n, dtype=np.float32)[:, None, None, None]
    frames = np.broadcast_to(x + t, (n, height, width, 3)).copy()
    frames[..., 1] = 100
    return frames.astype(np.uint8)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("enc") / "plain.mp4"
    write_mp4(path, gradient_frames())
    return path


def test_container_facts(plain: Path) -> None:
    facts = read_mp4(plain)
    assert facts.codec == "h264"
    assert (facts.width, facts.height) == (W, H)
    assert facts.fps == 24
    assert facts.frames.shape == (N, H, W, 3)
    assert facts.video_seconds == pytest.approx(N / 24)


def test_silent_aac_track_spans_the_video(plain: Path) -> None:
    facts = read_mp4(plain)
    assert facts.audio_codec == "aac"
    assert facts.audio_rate == 48_000
    assert facts.audio_seconds == pytest.approx(N / 24, abs=0.03)
    assert rms(facts.audio) == 0.0


def test_faststart_puts_moov_before_mdat(plain: Path) -> None:
    boxes = top_level_boxes(plain)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_frame_track_repeats_are_encoded_as_output_frames(tmp_path: Path) -> None:
    distinct = gradient_frames(4)
    track = FrameTrack(frames=distinct, index=np.array([0, 0, 0, 1, 1, 2, 3, 3]))
    assert write_mp4(tmp_path / "t.mp4", track) == 8
    decoded = read_mp4(tmp_path / "t.mp4").frames
    assert decoded.shape[0] == 8
    # repeats of one distinct frame decode (almost) alike, different ones do not
    assert np.abs(decoded[0].astype(int) - decoded[2]).mean() < 1.0
    assert np.abs(decoded[0].astype(int) - decoded[5]).mean() > 1.0


def test_same_frames_give_identical_bytes(tmp_path: Path) -> None:
    frames = gradient_frames()
    write_mp4(tmp_path / "a.mp4", frames)
    write_mp4(tmp_path / "b.mp4", frames)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_audio_is_muxed_cut_to_the_video(tmp_path: Path) -> None:
    t = np.arange(48_000 * 3) / 48_000  # 3 s of tone for a 1.5 s video
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    write_mp4(tmp_path / "a.mp4", gradient_frames(), audio=tone)
    facts = read_mp4(tmp_path / "a.mp4")
    assert facts.audio_seconds == pytest.approx(N / 24, abs=0.03)
    assert rms(facts.audio) > 0.2
    assert audio_samples(N) == 72_000


def test_odd_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_mp4(tmp_path / "odd.mp4", np.zeros((2, 31, 32, 3), np.uint8))


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280), (320, 192)])
def test_watermark_box_is_bottom_right_and_sized(width: int, height: int) -> None:
    x0, y0, x1, y1 = watermark_box(width, height)
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert x0 > width // 2 and y0 > height * 3 // 4
    assert width - x1 < width // 20 and height - y1 < height // 20
    assert (y1 - y0) >= min(height // 12, width // 14) * 0.6  # text about h/12 tall
    assert (x1 - x0) < width * 0.5


def test_watermark_is_visible_and_local(tmp_path: Path) -> None:
    frames = np.full((12, H, W, 3), 90, np.uint8)
    marked = apply_watermark(frames.copy())
    x0, y0, x1, y1 = watermark_box(W, H)
    outside = np.ones((H, W), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(marked[:, outside], frames[:, outside])
    box = marked[:, y0:y1, x0:x1].astype(int)
    assert box.max() >= 230 and box.min() <= 40  # white text, dark outline
    write_mp4(tmp_path / "plain.mp4", frames)
    write_mp4(tmp_path / "marked.mp4", marked)
    a, b = read_mp4(tmp_path / "plain.mp4").frames, read_mp4(tmp_path / "marked.mp4").frames
    diff = np.abs(a.astype(int) - b).mean(axis=(0, 3))
    assert diff[y0:y1, x0:x1].mean() > 15
    far = diff[: y0 - 16, : x0 - 16]  # away from the box (and its chroma/deblocking halo)
    assert far.mean() < 0.5
    assert b[:, y0:y1, x0:x1].mean() > a[:, y0:y1, x0:x1].mean()
