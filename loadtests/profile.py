"""A load profile: the job mix (YAML), and the DashScope create body of each job class.

    prompt: a horse gallops across a meadow      # optional, for every class
    jobs:
      - {weight: 3, model: happyhorse-1.0-i2v, resolution: 720P, duration: 5, image: "synthetic:1280x720"}
      - {weight: 1, model: happyhorse-1.0-t2v, resolution: 1080P, duration: 3, ratio: "9:16"}
      - {weight: 1, model: happyhorse-1.0-r2v, resolution: 720P, references: ["synthetic:800x800"]}
      - {weight: 1, model: happyhorse-1.0-video-edit, resolution: 720P, video: "synthetic:640x360",
         video_seconds: 3}

`image`, `references` and `video` take `synthetic:WxH` or a file path. A class is named by `name`,
or else by its model, resolution, duration and ratio; calibrations and predictions refer to it by
that name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PROMPT = "a horse gallops across a meadow at sunset"
_CLASS_KEYS = frozenset(
    {
        "name",
        "weight",
        "model",
        "resolution",
        "duration",
        "ratio",
        "image",
        "references",
        "video",
        "video_seconds",
        "prompt",
        "watermark",
    }
)


@dataclass(frozen=True)
class JobClass:
    """One kind of job in the mix."""

    name: str
    model: str
    weight: float = 1.0
    resolution: str = "720P"
    duration: int | None = 5
    ratio: str | None = None
    image: str | None = None
    references: tuple[str, ...] = ()
    video: str | None = None
    video_seconds: float = 3.0
    prompt: str = DEFAULT_PROMPT
    watermark: bool = True

    def body(self, media: Sequence[dict[str, str]], seed: int) -> str:
        """The JSON create body, with `media` as `[{"type", "url"}]` already resolved to URLs."""
        parameters: dict[str, Any] = {
            "resolution": self.resolution,
            "watermark": self.watermark,
            "seed": seed,
        }
        if self.duration is not None and self.video is None:
            parameters["duration"] = self.duration
        if self.ratio is not None:
            parameters["ratio"] = self.ratio
        payload: dict[str, Any] = {"prompt": self.prompt}
        if media:
            payload["media"] = list(media)
        body = {"model": self.model, "input": payload, "parameters": parameters}
        return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True)
class Profile:
    """The job mix a load test offers and a plan is made for."""

    jobs: tuple[JobClass, ...]
    source: str = field(default="", compare=False)

    @property
    def weights(self) -> list[float]:
        return [job.weight for job in self.jobs]

    def by_name(self, name: str) -> JobClass:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read a YAML profile; ValueError naming what is wrong."""
        raw = yaml.safe_load(Path(path).read_text())
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "") -> Profile:
        if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list) or not raw["jobs"]:
            raise ValueError(f"{source or 'profile'}: expected a non-empty list under 'jobs'")
        prompt = str(raw.get("prompt") or DEFAULT_PROMPT)
        classes: list[JobClass] = []
        for i, entry in enumerate(raw["jobs"]):
            classes.append(_job_class(entry, i, prompt, source))
        names = [c.name for c in classes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{source}: job classes share a name ({', '.join(duplicates)}); set 'name'")
        return cls(tuple(classes), source)


def _job_class(entry: Any, index: int, prompt: str, source: str) -> JobClass:
    where = f"{source or 'profile'}: jobs[{index}]"
    if not isinstance(entry, dict) or "model" not in entry:
        raise ValueError(f"{where}: each job needs at least a 'model'")
    unknown = set(entry) - _CLASS_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    weight = float(entry.get("weight", 1.0))
    if weight < 0:
        raise ValueError(f"{where}: weight must not be negative")
    references = entry.get("references") or ()
    if isinstance(references, str):
        references = (references,)
    model = str(entry["model"])
    resolution = str(entry.get("resolution", "720P"))
    video = entry.get("video")
    duration = None if video is not None else int(entry.get("duration", 5))
    ratio = entry.get("ratio")
    default_name = "-".join(
        part
        for part in (
            model.removeprefix("happyhorse-"),
            resolution,
            f"{duration}s" if duration is not None else "edit",
            str(ratio).replace(":", "x") if ratio else "",
        )
        if part
    )
    return JobClass(
        name=str(entry.get("name") or default_name),
        model=model,
        weight=weight,
        resolution=resolution,
        duration=duration,
        ratio=str(ratio) if ratio else None,
        image=entry.get("image"),
        references=tuple(str(r) for r in references),
        video=str(video) if video is not None else None,
        video_seconds=float(entry.get("video_seconds", 3.0)),
        prompt=str(entry.get("prompt") or prompt),
        watermark=bool(entry.get("watermark", True)),
    )
