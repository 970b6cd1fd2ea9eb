"""Checking an edit video against the rules of API.md §2: probed with PyAV, first frame decoded."""

from __future__ import annotations

import dataclasses
import io

import av

from server.errors import InvalidParameter
from server.media.common import MB, check_aspect, field_of, mb


@dataclasses.dataclass(frozen=True)
class VideoRule:
    """The video rule set from API.md §2 (video-edit input)."""

    name: str = "video"
    min_duration_s: float = 3.0
    max_duration_s: float = 60.0
    max_long_side: int = 4096
    min_short_side: int = 360
    min_aspect: float = 1 / 2.5
    max_aspect: float = 2.5
    max_bytes: int = 100 * MB
    min_fps_exclusive: float = 8.0


EDIT_VIDEO_RULE = VideoRule()


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What an accepted video is, as probed from its container (size as displayed, rotation applied)."""

    format: str  # "mp4" | "mov"
    content_type: str
    width: int
    height: int
    duration_s: float
    fps: float
    has_audio: bool


_VIDEO_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime"}
# Old QuickTime files may start with one of these atoms instead of 'ftyp'.
_QT_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


def sniff_container(data: bytes) -> str | None:
    """The container from the first ISO-BMFF box (mov for brand 'qt  ', else mp4), or None."""
    if len(data) < 12:
        return None
    box = data[4:8]
    if box == b"ftyp":
        return "mov" if data[8:12] == b"qt  " else "mp4"
    return "mov" if box in _QT_FIRST_ATOMS else None


def inspect_video(data: bytes, rule: VideoRule, *, field: str) -> VideoInfo:
    """Probe a video in memory and check it against `rule`; its facts if it passes."""
    where = field_of(field, rule.name)
    fmt = sniff_container(data)
    if fmt is None:
        raise InvalidParameter(f"{where}: video must be MP4 or MOV")
    if len(data) > rule.max_bytes:
        raise InvalidParameter(f"{where}: video file size must be at most {mb(rule.max_bytes)}")
    try:
        # Force the mov/mp4 demuxer: content that merely starts with 'ftyp' reaches no other one.
        with av.open(io.BytesIO(data), mode="r", format="mov") as container:
            info = _probe(container, fmt, where)
            _check_video(info, rule, where)
            rotation = _decode_first_frame(container, where)
    except (av.FFmpegError, OSError, ValueError, EOFError):
        raise InvalidParameter(f"{where}: video could not be read") from None
    if rotation % 180 == 90:  # a phone video shown portrait: report what a viewer sees
        info = dataclasses.replace(info, width=info.height, height=info.width)
    return info


def _probe(container: av.container.InputContainer, fmt: str, where: str) -> VideoInfo:
    if not container.streams.video:
        raise InvalidParameter(f"{where}: video has no video stream")
    stream = container.streams.video[0]
    duration = stream_duration_s(container, stream)
    fps = _fps(stream, duration)
    return VideoInfo(
        format=fmt,
        content_type=_VIDEO_TYPES[fmt],
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        duration_s=duration,
        fps=fps,
        has_audio=bool(container.streams.audio),
    )


def stream_duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """The video stream's duration in seconds: the stream's own, else the container's, else 0."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _fps(stream: av.video.stream.VideoStream, duration: float) -> float:
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        return float(rate)
    if stream.frames and duration > 0:
        return stream.frames / duration
    return 0.0


def _check_video(info: VideoInfo, rule: VideoRule, where: str) -> None:
    w, h = info.width, info.height
    got = f"got {w}x{h}"
    if not rule.min_duration_s <= info.duration_s <= rule.max_duration_s:
        raise InvalidParameter(
            f"{where}: video duration must be {rule.min_duration_s:g} to {rule.max_duration_s:g} s, "
            f"got {info.duration_s:.2f} s"
        )
    if max(w, h) > rule.max_long_side:
        raise InvalidParameter(f"{where}: video long side must be at most {rule.max_long_side} px, {got}")
    if min(w, h) < rule.min_short_side:
        raise InvalidParameter(f"{where}: video short side must be at least {rule.min_short_side} px, {got}")
    check_aspect(w, h, rule.min_aspect, rule.max_aspect, f"{where}: video", got)
    if not info.fps > rule.min_fps_exclusive:
        raise InvalidParameter(
            f"{where}: video frame rate must be more than {rule.min_fps_exclusive:g} fps, got {info.fps:.2f}"
        )


def _decode_first_frame(container: av.container.InputContainer, where: str) -> int:
    """Decode one frame (after the size checks) so an undecodable stream fails now, not in a worker.

    Returns its display rotation in degrees (0, 90, 180 or 270).
    """
    for frame in container.decode(video=0):
        return round(frame.rotation) % 360
    raise InvalidParameter(f"{where}: video has no decodable frames")
