"""Input media to arrays (images, source video frames and sound) and native frames to the output
size and frame rate. Torch-free."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageOps

OUTPUT_FPS = 24
AUDIO_RATE = 48_000


# ----------------------------------------------------------------------------- images
def decode_image(data: bytes) -> Image.Image:
    """PNG/JPEG/WEBP bytes -> an RGB PIL image, upright (EXIF orientation applied)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return ImageOps.exif_transpose(img).convert("RGB")


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale `image` to cover `width` x `height` and centre-crop the overflow (no distortion)."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


def shrink_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """A copy no larger than `width` x `height`, aspect kept (reference images: the pipeline
    letterboxes them itself, so only the needless pixels go)."""
    copy = image.copy()
    copy.thumbnail((width, height), Image.Resampling.BICUBIC)
    return copy


# ----------------------------------------------------------------------------- source video
def source_frame_times(num_frames: int, fps: float) -> np.ndarray:
    """The instants (seconds) at which native frames sample the source: i / fps."""
    return np.arange(num_frames, dtype=np.float64) / fps


def decode_video(data: bytes, *, num_frames: int, fps: float, width: int, height: int) -> np.ndarray:
    """The source video's frames at `fps`, resized to `width` x `height`: uint8 [num_frames, h, w, 3].

    Native frame i shows the source frame on screen at t = i / fps (the last one whose
    timestamp is <= t; the first one if the source starts late). If the source ends early its
    last frame is held. Raises ValueError for data with no decodable video.
    """
    times = source_frame_times(num_frames, fps)
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    filled = 0
    held: av.VideoFrame | None = None  # the frame on screen before the one just decoded
    held_rgb: np.ndarray | None = None  # `held` converted, done only when a sample needs it
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.video:
            raise ValueError("the source has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        for frame in container.decode(stream):
            t = (float(frame.time) if frame.time is not None else start) - start
            while filled < num_frames and times[filled] < t - 1e-6:
                if held_rgb is None:
                    held_rgb = _to_rgb(held if held is not None else frame, width, height)
                out[filled] = held_rgb
                filled += 1
            if filled == num_frames:
                return out
            held, held_rgb = frame, None
    if held is None:
        raise ValueError("the source video has no decodable frames")
    out[filled:] = held_rgb if held_rgb is not None else _to_rgb(held, width, height)
    return out


def _to_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    return frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BICUBIC")


def decode_audio(data: bytes, seconds: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """The first `seconds` of the source's sound as float32 stereo [2, round(seconds*rate)] at `rate`.

    Zero-padded when the sound is shorter; all zeros when the source has no audio stream.
    """
    total = round(seconds * rate)
    out = np.zeros((2, total), dtype=np.float32)
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.audio:
            return out
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        filled = 0
        for frame in container.decode(container.streams.audio[0]):
            for chunk in resampler.resample(frame):
                filled = _append(out, chunk.to_ndarray(), filled)
            if filled >= total:
                return out
        for chunk in resampler.resample(None):
            filled = _append(out, chunk.to_ndarray(), filled)
    return out


def _append(out: np.ndarray, samples: np.ndarray, filled: int) -> int:
    n = min(samples.shape[1], out.shape[1] - filled)
    if n > 0:
        out[:, filled : filled + n] = samples[:, :n]
    return filled + max(n, 0)


# ----------------------------------------------------------------------------- output resampling
@dataclass(frozen=True)
class FrameTrack:
    """An output video held as its distinct frames plus, per output frame, which one it shows.

    Nearest-frame resampling repeats native frames, so this keeps memory (and the watermark
    blend) proportional to the native frame count, not the output's. Indexing yields uint8
    [H, W, 3] frames.
    """

    frames: np.ndarray  # uint8 [U, H, W, 3], the distinct frames
    index: np.ndarray  # int [N], output frame -> row of `frames`
    fps: int = OUTPUT_FPS

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, i: int) -> np.ndarray:
        return self.frames[self.index[i]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.frames[j] for j in self.index)

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    def to_array(self) -> np.ndarray:
        """All N output frames as one uint8 [N, H, W, 3] array (a copy)."""
        return self.frames[self.index]


def temporal_index(num_native: int, native_fps: float, count: int, fps: float = OUTPUT_FPS) -> np.ndarray:
    """Which native frame each of `count` output frames shows.

    Rule: output frame i is at t = i / fps and takes native frame floor(t * native_fps + 0.5)
    (the nearest one in time, halves rounding up), clamped to the last native frame.
    """
    t = np.arange(count, dtype=np.float64) / fps
    nearest = np.floor(t * native_fps + 0.5 + 1e-9).astype(np.int64)
    return np.minimum(nearest, num_native - 1)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float [.., 3] in [0, 1] -> uint8, rounding to nearest."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def resize_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """One uint8 [h, w, 3] frame to `width` x `height` with PIL bicubic."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    image = Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image)


def resample(
    frames: np.ndarray, native_fps: float, width: int, height: int, count: int, fps: int = OUTPUT_FPS
) -> FrameTrack:
    """Native frames (float32 [F, h, w, 3] in [0, 1], or uint8) to exactly `count` frames of
    `width` x `height` at `fps`.

    Spatial: each used native frame is converted to uint8 and resized with PIL bicubic, once.
    Temporal: see `temporal_index` (nearest native frame in time, clamped at the end).
    """
    if count < 1 or frames.shape[0] < 1:
        raise ValueError("resample needs at least one native frame and one output frame")
    index = temporal_index(frames.shape[0], native_fps, count, fps)
    used, remap = np.unique(index, return_inverse=True)
    native = frames[used] if frames.dtype == np.uint8 else to_uint8(frames[used])
    out = np.empty((used.shape[0], height, width, 3), dtype=np.uint8)
    for row, frame in enumerate(native):
        out[row] = resize_frame(frame, width, height)
    return FrameTrack(frames=out, index=remap.astype(np.int64), fps=fps)


def output_frame_count(duration_s: float, fps: int = OUTPUT_FPS) -> int:
    """Frames in the delivered video: round(duration * fps), at least one."""
    return max(1, math.floor(duration_s * fps + 0.5))
