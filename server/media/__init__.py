"""Input media: fetching a client's URL safely (`fetch`) and checking images (`images`, `png`) and
videos (`videos`) against the rules of API.md §2 before anything is queued."""

from __future__ import annotations

from server.media.fetch import FetchPolicy, MediaFetcher, decode_data_uri
from server.media.images import (
    EDIT_REFERENCE_RULE,
    FIRST_FRAME_RULE,
    R2V_REFERENCE_RULE,
    ImageInfo,
    ImageRule,
    inspect_image,
    sniff_image,
)
from server.media.videos import EDIT_VIDEO_RULE, VideoInfo, VideoRule, inspect_video, sniff_container

__all__ = [
    "EDIT_REFERENCE_RULE",
    "EDIT_VIDEO_RULE",
    "FIRST_FRAME_RULE",
    "R2V_REFERENCE_RULE",
    "FetchPolicy",
    "ImageInfo",
    "ImageRule",
    "MediaFetcher",
    "VideoInfo",
    "VideoRule",
    "decode_data_uri",
    "inspect_image",
    "inspect_video",
    "sniff_container",
    "sniff_image",
]
