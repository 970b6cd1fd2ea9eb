"""Flow-matching samplers from diffusers (Euler and UniPC): the kind a backend loads with, and one
fresh instance per job for the engine."""

from __future__ import annotations

from typing import Any

from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

SAMPLERS = ("euler", "unipc")


def flow_shift(scheduler: Any) -> float:
    """The timestep shift of either scheduler class (they name it differently)."""
    config = scheduler.config
    if isinstance(scheduler, UniPCMultistepScheduler):
        return float(config.get("flow_shift") or 1.0)
    return float(config.get("shift") or 1.0)


def convert_scheduler(template: Any, kind: str | None) -> Any:
    """`template`'s scheduler as `kind` ("euler" | "unipc"), keeping its flow shift; `template`
    itself when `kind` is None or already matches. Backends apply this to their pipelines at load
    time, so the stock pipeline and the engine always sample alike."""
    if kind is None:
        return template
    if kind not in SAMPLERS:
        raise ValueError(f"unknown sampler {kind!r}; choose one of {SAMPLERS}")
    shift = flow_shift(template)
    if kind == "euler":
        if isinstance(template, FlowMatchEulerDiscreteScheduler):
            return template
        return FlowMatchEulerDiscreteScheduler(shift=shift)  # type: ignore[no-untyped-call]  # untyped __init__
    if isinstance(template, UniPCMultistepScheduler):
        return template
    return UniPCMultistepScheduler(  # type: ignore[no-untyped-call]  # untyped __init__
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
    )


def job_scheduler(template: Any, steps: int, device: Any) -> Any:
    """A fresh scheduler for one job, configured like `template`, with its timesteps set."""
    scheduler = type(template).from_config(template.config)
    scheduler.set_timesteps(steps, device=device)
    scheduler.set_begin_index(0)
    return scheduler
