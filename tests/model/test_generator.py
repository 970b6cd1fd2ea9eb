"""model.generator: every family end to end through the real tiny pipelines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model.backends import save_tiny
from model.generator import VideoGenerator
from model.registry import TaskFamily, default_registry
from model.request import GenerationRequest, GenerationResult
from tests.support.mp4 import read_mp4, rms
from tests.videos import make_image, make_video

MODELS = {
    TaskFamily.T2V: "happyhorse-1.0-t2v",
    TaskFamily.I2V: "happyhorse-1.1-i2v",
    TaskFamily.R2V: "happyhorse-1.0-r2v",
    TaskFamily.VIDEO_EDIT: "happyhorse-1.0-video-edit",
}


def request(
    family: TaskFamily,
    *,
    width: int = 320,
    height: int = 192,
    seconds: float = 3,
    seed: int = 7,
    **media: object,
) -> GenerationRequest:
    return GenerationRequest(
        task_id=f"{family.value}-{seed}-{width}x{height}",
        model=MODELS[family],
        family=family,
        prompt="a happy horse",
        width=width,
        height=height,
        duration_s=seconds,
        seed=seed,
        **media,
    )  # type: ignore[arg-type]


def check_file(result: GenerationResult, width: int, height: int, frames: int) -> np.ndarray:
    facts = read_mp4(result.path)
    assert (facts.codec, facts.fps, facts.audio_codec) == ("h264", 24, "aac")
    assert (facts.width, facts.height) == (width, height) == (result.width, result.height)
    assert facts.frames.shape[0] == frames == result.frame_count
    assert result.duration_s == pytest.approx(frames / 24)
    assert facts.audio_seconds == pytest.approx(frames / 24, abs=0.03)
    return facts.frames


def test_t2v(generator: VideoGenerator, tmp_path: Path) -> None:
    steps: list[tuple[int, int]] = []
    result = generator.generate(request(TaskFamily.T2V), tmp_path, progress=lambda s, t: steps.append((s, t)))
    assert result.path == tmp_path / "t2v-7-320x192.mp4"
    check_file(result, 320, 192, 72)
    assert steps == [(step, 8) for step in range(1, 9)]  # the tiny MagiHuman's distilled 8 steps
    assert {"generate_s", "resample_s", "watermark_s", "encode_s", "total_s"} <= set(result.timings)
    assert rms(read_mp4(result.path).audio) > 0.02  # the model's own sound, not silence


def test_i2v_portrait_image(generator: VideoGenerator, tmp_path: Path) -> None:
    # the facade computed a 3:4 output size from the image; the generator just honours it
    req = request(TaskFamily.I2V, width=192, height=256, first_frame=make_image(300, 400))
    check_file(generator.generate(req, tmp_path), 192, 256, 72)


def test_r2v_with_two_references(generator: VideoGenerator, tmp_path: Path) -> None:
    refs = (make_image(400, 500, seed=1), make_image(600, 400, "JPEG", seed=2))
    check_file(generator.generate(request(TaskFamily.R2V, reference_images=refs), tmp_path), 320, 192, 72)


@pytest.mark.parametrize("keep", [True, False])
def test_video_edit_source_audio(generator: VideoGenerator, tmp_path: Path, keep: bool) -> None:
    source = make_video(320, 192, 3.0, fps=12, tone_hz=440.0)
    req = request(
        TaskFamily.VIDEO_EDIT, video=source, keep_source_audio=keep, reference_images=(make_image(400, 400),)
    )
    result = generator.generate(req, tmp_path)
    check_file(result, 320, 192, 72)
    loudness = rms(read_mp4(result.path).audio)
    assert (loudness > 0.1) if keep else (loudness == 0.0)


def test_video_edit_keeps_silence_of_a_silent_source(generator: VideoGenerator, tmp_path: Path) -> None:
    req = request(TaskFamily.VIDEO_EDIT, video=make_video(320, 192, 3.0), keep_source_audio=True)
    assert rms(read_mp4(generator.generate(req, tmp_path).path).audio) == 0.0


def test_seed_decides_the_video(generator: VideoGenerator, tmp_path: Path) -> None:
    image = make_image(320, 192)
    a = generator.generate(request(TaskFamily.I2V, first_frame=image), tmp_path / "a")
    b = generator.generate(request(TaskFamily.I2V, first_frame=image), tmp_path / "b")
    c = generator.generate(request(TaskFamily.I2V, first_frame=image, seed=8), tmp_path / "c")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert not np.array_equal(read_mp4(a.path).frames, read_mp4(c.path).frames)


def test_watermark_flag(generator: VideoGenerator, tmp_path: Path) -> None:
    marked = generator.generate(request(TaskFamily.T2V), tmp_path / "m")
    plain = generator.generate(request(TaskFamily.T2V, watermark=False), tmp_path / "p")
    a, b = read_mp4(marked.path).frames.astype(int), read_mp4(plain.path).frames
    diff = np.abs(a - b).mean(axis=(0, 3))
    assert diff[-24:, -120:].mean() > 10 > diff[:96, :160].mean()


def test_model_names_share_backends(generator: VideoGenerator) -> None:
    assert generator.backend("happyhorse-1.0-t2v") is generator.backend("happyhorse-1.1-i2v")
    assert generator.backend("happyhorse-1.0-r2v") is generator.backend("happyhorse-1.0-video-edit")
    assert generator.backend("happyhorse-1.0-t2v") is not generator.backend("happyhorse-1.0-r2v")


def test_bad_requests(generator: VideoGenerator, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        generator.generate(
            GenerationRequest(
                task_id="x",
                model="nope",
                family=TaskFamily.T2V,
                prompt="p",
                width=64,
                height=64,
                duration_s=3,
                seed=0,
            ),
            tmp_path,
        )
    with pytest.raises(ValueError, match="first_frame"):
        generator.generate(request(TaskFamily.I2V), tmp_path)
    with pytest.raises(ValueError, match="video"):
        generator.generate(request(TaskFamily.VIDEO_EDIT), tmp_path)
    with pytest.raises(ValueError, match="reference"):
        generator.generate(request(TaskFamily.R2V), tmp_path)


def test_a_checkpoint_folder_serves_a_model(tmp_path: Path) -> None:
    folder = save_tiny("magihuman", tmp_path / "magihuman")
    spec = replace(default_registry()["happyhorse-1.0-t2v"], checkpoint=str(folder))
    gen = VideoGenerator({spec.name: spec})
    try:
        result = gen.generate(replace(request(TaskFamily.T2V), model=spec.name), tmp_path)
    finally:
        gen.close()
    assert read_mp4(result.path).frames.shape == (72, 192, 320, 3)
