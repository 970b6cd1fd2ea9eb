"""What the planner knows about a stack: per job class, the work of each phase, and per variant
(GPUs per worker, step cache), how many jobs the host runs at full speed at once.

The JSON (`calibration.json`) is written by `paddock plan calibrate` and read by every other
`plan` command. One file may hold several variants (merge calibrations with `--calibration A B`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

VERSION = 1


@dataclass(frozen=True)
class ClassCalibration:
    """One job class measured alone (seconds of wall time with nothing else running).

    A job's service is `pre_s` (inputs: fetch and decode, on the host), then the engine: `steps`
    denoising steps of `step_s(k)` each while k jobs of its batch group share a forward, and a
    VAE decode of `vae_s` on the decode thread, then `post_s` on the host (resample, watermark,
    audio, encode, upload), then `misc_s` of waiting that uses no processor (claim, commit,
    object-store round trips)."""

    steps: int
    step_s: float  # t(1): one step of this job alone
    batch_slope: float = 1.0  # t(k) = step_s * (1 + batch_slope * (k - 1)); 1.0: no gain from batching
    vae_s: float = 0.0
    pre_s: float = 0.0
    post_s: float = 0.0
    misc_s: float = 0.0
    batch_group: str = ""  # jobs batch only within a group (default: the class itself)
    max_batch: int = 0  # jobs one forward may hold (the token budget); 0: no cap

    def step_time(self, k: int) -> float:
        return self.step_s * (1.0 + self.batch_slope * (max(k, 1) - 1))

    @property
    def alone_s(self) -> float:
        """The service time of this job with the machine to itself."""
        return self.pre_s + self.steps * self.step_s + self.vae_s + self.post_s + self.misc_s

    def slowed(self, factor: float) -> ClassCalibration:
        """This class on a machine `factor` times slower: every phase takes `factor` times as long."""
        return replace(
            self,
            step_s=self.step_s * factor,
            vae_s=self.vae_s * factor,
            pre_s=self.pre_s * factor,
            post_s=self.post_s * factor,
            misc_s=self.misc_s * factor,
        )


@dataclass(frozen=True)
class Variant:
    """One configuration a fleet can be built from.

    `host_parallelism` is how many of the host's activities run at full speed at once (fitted on
    a burst; about the core count, less where threads contend for the GIL or memory bandwidth).
    With `device_on_host` (CPU workers) the steps and the VAE decode run on those same cores; on a
    GPU they share the device instead, one activity at full speed."""

    name: str
    classes: dict[str, ClassCalibration]
    gpus_per_worker: int = 1
    step_cache: bool = False
    device_on_host: bool = True
    host_parallelism: float = 1.0
    max_slots: int = 4
    source: str = ""

    def slowed(self, factor: float) -> Variant:
        """This variant on a machine `factor` times slower (a lone job took `factor` times as long
        as at calibration): what a prediction made now, on that machine, would use."""
        return replace(self, classes={name: c.slowed(factor) for name, c in self.classes.items()})

    def covers(self, names: Iterable[str]) -> list[str]:
        """The names this variant has no calibration for."""
        return [n for n in names if n not in self.classes]


@dataclass(frozen=True)
class FacadeCapacity:
    """One facade replica's measured request capacity (`paddock bench facade`)."""

    query_per_s: float
    submit_per_s: float


@dataclass(frozen=True)
class Calibration:
    variants: tuple[Variant, ...]
    facade: FacadeCapacity | None = None
    notes: tuple[str, ...] = field(default=())

    def variant(self, name: str | None = None) -> Variant:
        """The named variant, or the first one."""
        if name is None:
            return self.variants[0]
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r} in the calibration ({', '.join(v.name for v in self.variants)})")

    def merged(self, other: Calibration) -> Calibration:
        """Both files' variants (later names win) and the later facade measurement."""
        by_name = {v.name: v for v in self.variants}
        by_name.update({v.name: v for v in other.variants})
        return Calibration(tuple(by_name.values()), other.facade or self.facade, self.notes + other.notes)

    def save(self, path: Path) -> None:
        data = {"version": VERSION, **asdict(self)}
        path.write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        raw = json.loads(Path(path).read_text())
        if raw.get("version") != VERSION:
            raise ValueError(f"{path}: calibration version {raw.get('version')!r}, expected {VERSION}")
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Calibration:
        variants = []
        for v in raw["variants"]:
            classes = {name: ClassCalibration(**c) for name, c in v["classes"].items()}
            variants.append(Variant(**{**v, "classes": classes}))
        facade = FacadeCapacity(**raw["facade"]) if raw.get("facade") else None
        return cls(tuple(variants), facade, tuple(raw.get("notes", ())))

    @classmethod
    def load_all(cls, paths: Iterable[str | Path]) -> Calibration:
        merged: Calibration | None = None
        for path in paths:
            loaded = cls.load(path)
            merged = loaded if merged is None else merged.merged(loaded)
        if merged is None:
            raise ValueError("no calibration given")
        return merged


def with_facade(calibration: Calibration, facade: FacadeCapacity) -> Calibration:
    return replace(calibration, facade=facade)
