"""What the playground needs to know about the served models (`GET /web/models`).

Everything here comes from the constants the API itself checks with (`server.api.schemas`,
`server.media`, `IMAGE_RULES`), so the page's form and its browser-side image checks cannot drift
from the server's: the page only formats these numbers into the server's own messages.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from model.registry import TaskFamily
from server.api import schemas
from server.api.tasks.service import IMAGE_RULES
from server.media import EDIT_VIDEO_RULE, ImageRule, VideoRule

if TYPE_CHECKING:
    from model.registry import ModelSpec
    from server.config import Settings
    from server.keys import Tenant

IMAGE_FORMATS = ("jpeg", "png", "webp")
VIDEO_FORMATS = ("mp4", "mov")
DURATION_RANGE = {"min": 3, "max": 15, "default": 5}
DEFAULT_RESOLUTION = "1080P"
DEFAULT_RATIO = "16:9"
AUDIO_SETTINGS = ("auto", "origin")
# Families whose output follows the ratio parameter (i2v keeps the image's aspect, edit the video's).
RATIO_FAMILIES = frozenset({TaskFamily.T2V, TaskFamily.R2V})


def image_rule(rule: ImageRule, settings: Settings) -> dict[str, Any]:
    """An image rule as JSON (an unbounded aspect is null)."""
    return {
        "kind": "image",
        "formats": list(IMAGE_FORMATS),
        "min_width": rule.min_width,
        "min_height": rule.min_height,
        "min_short_side": rule.min_short_side,
        "min_aspect": rule.min_aspect,
        "max_aspect": None if math.isinf(rule.max_aspect) else rule.max_aspect,
        "max_bytes": rule.max_bytes,
        "max_pixels": settings.max_image_pixels,
    }


def video_rule(rule: VideoRule) -> dict[str, Any]:
    """The video rule as JSON (the frame rate is left to the server: a browser cannot measure it)."""
    return {
        "kind": "video",
        "formats": list(VIDEO_FORMATS),
        "min_duration_s": rule.min_duration_s,
        "max_duration_s": rule.max_duration_s,
        "max_long_side": rule.max_long_side,
        "min_short_side": rule.min_short_side,
        "min_aspect": rule.min_aspect,
        "max_aspect": rule.max_aspect,
        "max_bytes": rule.max_bytes,
    }


def model_entry(spec: ModelSpec, settings: Settings) -> dict[str, Any]:
    """One model: its family, the media it takes (with their rules) and its parameters."""
    media = []
    for media_type, (low, high) in schemas.MEDIA_TYPES[spec.family].items():
        if media_type == "video":
            rule = video_rule(EDIT_VIDEO_RULE)
        else:
            rule = image_rule(IMAGE_RULES[(spec.family, media_type)], settings)
        media.append({"type": media_type, "min": low, "max": high, "rule": rule})
    is_edit = spec.family == TaskFamily.VIDEO_EDIT
    return {
        "name": spec.name,
        "family": spec.family.value,
        "endpoint": spec.endpoint.value,
        "prompt_required": spec.family in schemas.PROMPT_REQUIRED,
        "media": media,
        "parameters": {
            "resolution": {"choices": list(schemas.RESOLUTIONS), "default": DEFAULT_RESOLUTION},
            "ratio": {"choices": list(schemas.RATIOS), "default": DEFAULT_RATIO}
            if spec.family in RATIO_FAMILIES
            else None,
            "duration": None if is_edit else DURATION_RANGE,
            "audio_setting": {"choices": list(AUDIO_SETTINGS), "default": "auto"} if is_edit else None,
            "seed": {"min": 0, "max": schemas.MAX_SEED},
        },
    }


def catalogue(registry: dict[str, ModelSpec], tenant: Tenant, settings: Settings) -> dict[str, Any]:
    """The models `tenant` may use, by name, and whether it may open the operators' view."""
    models = [model_entry(spec, settings) for name, spec in sorted(registry.items()) if tenant.may_use(name)]
    return {"models": models, "admin": tenant.admin}
