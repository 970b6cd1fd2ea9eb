"""Step caches from diffusers as per-job options, with per-job state.

A model's registry entry may carry `options.cache`, e.g. `{type: first_block, threshold: 0.05}`,
`{type: taylorseer, cache_interval: 3}`, `{type: magcache, mag_ratios: [...], threshold: 0.1}`.
The hooks live on the transformer; their state is kept per cache context, and every cached job
runs in a context of its own (and alone in its batch), released when the job ends, so no state
crosses from one job to another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

# Wan's block names: TaylorSeer's default patterns (`^blocks.*attn`, re.fullmatch) miss
# `blocks.N.attn1`, so they are spelled out (notes/model.md §5).
WAN_TAYLORSEER_IDENTIFIERS = [r"^blocks\.\d+\.attn\d$"]


def cache_config(options: dict[str, Any]) -> Any | None:
    """The diffusers cache config for `options["cache"]`, or None."""
    spec = options.get("cache")
    if not spec:
        return None
    spec = dict(spec)
    kind = spec.pop("type")
    import diffusers

    if kind == "first_block":
        return diffusers.FirstBlockCacheConfig(threshold=float(spec.pop("threshold", 0.05)), **spec)
    if kind == "taylorseer":
        spec.setdefault("cache_identifiers", WAN_TAYLORSEER_IDENTIFIERS)
        return diffusers.TaylorSeerCacheConfig(**spec)
    if kind == "magcache":
        if "mag_ratios" not in spec and not spec.get("calibrate"):
            raise ValueError("magcache needs mag_ratios from a calibration run (or calibrate: true)")
        return diffusers.MagCacheConfig(**spec)
    raise ValueError(f"unknown cache type {kind!r}; choose first_block, taylorseer or magcache")


def new_cache_context() -> str:
    """A hook-state context name no other job uses."""
    return f"job-{uuid.uuid4().hex}"


def release_cache_context(modules: Iterable[Any], name: str) -> None:
    """Drop the per-context state every stateful hook on `modules` keeps for `name`.

    diffusers keeps hook state per context name (`StateManager._state_cache`) and only offers a
    reset of all contexts; a serving loop with many jobs in flight must free one at a time.
    """
    from diffusers.hooks.hooks import HookRegistry, StateManager

    for root in modules:
        registry = getattr(root, "_diffusers_hook", None)
        if not isinstance(registry, HookRegistry):
            continue
        for child in (registry, *registry._get_child_registries()):
            for hook in child.hooks.values():
                for attr in vars(hook).values():
                    if isinstance(attr, StateManager):
                        attr._state_cache.pop(name, None)
