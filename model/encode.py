"""The delivered file: the "Happy Horse" watermark and the MP4 writer (H.264 + AAC, PyAV). Torch-free."""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.video import AUDIO_RATE, OUTPUT_FPS, FrameTrack

WATERMARK_TEXT = "Happy Horse"
AAC_FRAME = 1024  # samples per AAC frame


# ----------------------------------------------------------------------------- watermark
@functools.lru_cache(maxsize=16)
def _watermark_patch(width: int, height: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The text rendered once per frame size: (premultiplied RGB float32, alpha float32), box."""
    # ~h/12 tall, but narrow (portrait) frames cap it so the text stays under ~45% of the width
    size = max(8, min(height // 12, width // 14))
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 16)
    left, top, right, bottom = font.getbbox(WATERMARK_TEXT, stroke_width=stroke)
    margin = max(2, height // 40)
    pw, ph = min(width, right - left), min(height, bottom - top)
    patch = Image.new("RGBA", (pw, ph), (0, 0, 0, 0))
    ImageDraw.Draw(patch).text(
        (-left, -top),
        WATERMARK_TEXT,
        font=font,
        fill=(255, 255, 255, 235),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, 200),
    )
    rgba = np.asarray(patch, dtype=np.float32) / 255.0
    alpha = rgba[..., 3:4]
    x0, y0 = max(0, width - pw - margin), max(0, height - ph - margin)
    return np.concatenate([rgba[..., :3] * alpha * 255.0, alpha], axis=-1), (x0, y0, x0 + pw, y0 + ph)


def watermark_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Where the watermark goes in a `width` x `height` frame: (x0, y0, x1, y1), bottom-right."""
    return _watermark_patch(width, height)[1]


def apply_watermark(frames: np.ndarray) -> np.ndarray:
    """Alpha-blend white "Happy Horse" text with a dark outline into the bottom-right corner of
    every uint8 [N, H, W, 3] frame, in place; returns `frames`."""
    height, width = frames.shape[1:3]
    patch, (x0, y0, x1, y1) = _watermark_patch(width, height)
    colour, alpha = patch[..., :3], patch[..., 3:]
    roi = frames[:, y0:y1, x0:x1].astype(np.float32)
    roi *= 1.0 - alpha
    roi += colour
    frames[:, y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
    return frames


# ----------------------------------------------------------------------------- MP4
def audio_samples(frame_count: int, fps: int = OUTPUT_FPS, rate: int = AUDIO_RATE) -> int:
    """Audio samples spanning exactly `frame_count` frames at `fps`."""
    return round(frame_count * rate / fps)


def write_mp4(
    path: str | Path,
    frames: FrameTrack | np.ndarray,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int = AUDIO_RATE,
    crf: int = 23,
    preset: str = "veryfast",
) -> int:
    """Write uint8 RGB frames as H.264 (yuv420p, `frames.fps`, default 24) plus an AAC track, `+faststart`.

    `frames` is a FrameTrack or a uint8 [N, H, W, 3] array (then at 24 fps). `audio` is float32
    [channels, samples] in [-1, 1] at `sample_rate` (1 or 2 channels); it is cut or zero-padded
    to the video's exact duration, and None means a silent track. Returns the number of video
    frames written. Raises ValueError for odd sizes (yuv420p needs even ones).
    """
    track = frames if isinstance(frames, FrameTrack) else FrameTrack(frames, np.arange(len(frames)))
    width, height, fps = track.width, track.height, track.fps
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even dimensions, got {width}x{height}")
    # faststart is a muxer option: the moov box is moved before mdat when the file is closed
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        video.options = {"crf": str(crf), "preset": preset}
        sound = container.add_stream("aac", rate=sample_rate, layout="stereo")
        _encode_video(container, video, track)
        samples = audio_samples(len(track), fps, sample_rate)
        track_audio = np.zeros((2, samples), np.float32) if audio is None else _fit_audio(audio, samples)
        _encode_audio(container, sound, track_audio, sample_rate)
    return len(track)


def _encode_video(container: av.container.OutputContainer, stream: av.VideoStream, track: FrameTrack) -> None:
    """Encode every output frame; a repeated distinct frame is colour-converted only once."""
    last, yuv = -1, None
    for pts, row in enumerate(track.index):
        if row != last or yuv is None:
            # the encoder copies the picture on send, so one converted frame can be sent again
            rgb = np.ascontiguousarray(track.frames[row])
            yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            last = row
        yuv.pts = pts
        container.mux(stream.encode(yuv))
    container.mux(stream.encode(None))


def _fit_audio(audio: np.ndarray, samples: int) -> np.ndarray:
    """Stereo float32 [2, samples]: mono duplicated, longer cut, shorter zero-padded."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    out = np.zeros((2, samples), dtype=np.float32)
    n = min(samples, audio.shape[1])
    out[:, :n] = np.clip(audio[:2, :n], -1.0, 1.0)
    return out


def _encode_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, audio: np.ndarray, rate: int
) -> None:
    for start in range(0, audio.shape[1], AAC_FRAME):
        chunk = np.ascontiguousarray(audio[:, start : start + AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
