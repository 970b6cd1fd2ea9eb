"""Transformer weights on disk: the released layout and the diffusers-style component folder.

Both hold the original key names (`block.layers.N.attention.linear_qkv.weight`, ...), as the
released checkpoints and the published diffusers conversions do:

- released layout: `model.safetensors`, or `model.safetensors.index.json` and its shards;
- diffusers-style `transformer/` or `sr/` folder: `config.json` (the original's field names) and
  `diffusion_pytorch_model.safetensors` or its sharded index.

paddock's modules have their own names; `original_name` and `paddock_name` convert one to the
other. Loading is strict: every tensor of the file must land in a parameter of the right shape
and every parameter must be filled, or loading fails naming the keys. With no `config.json`
(the released layout has none) the sizes are read from the tensor shapes.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model.backends.magihuman.config import NUM_MODALITIES, MagiHumanConfig
from model.backends.magihuman.rope import fourier_bands
from model.backends.magihuman.transformer import MagiHumanTransformer

ORIGINAL_STEM = "model"
DIFFUSERS_STEM = "diffusion_pytorch_model"
# Not a parameter here (computed on the fly); checked against the computed values when present.
ROPE_BANDS_KEY = "adapter.rope.bands"

# (paddock name, original name) prefixes; "{n}" is a layer index.
_NAMES = (
    ("video_embed.", "adapter.video_embedder."),
    ("audio_embed.", "adapter.audio_embedder."),
    ("text_embed.", "adapter.text_embedder."),
    ("layers.{n}.attn.norm.", "block.layers.{n}.attention.pre_norm."),
    ("layers.{n}.attn.qkv.", "block.layers.{n}.attention.linear_qkv."),
    ("layers.{n}.attn.out.", "block.layers.{n}.attention.linear_proj."),
    ("layers.{n}.attn.q_norm.", "block.layers.{n}.attention.q_norm."),
    ("layers.{n}.attn.k_norm.", "block.layers.{n}.attention.k_norm."),
    ("layers.{n}.mlp.norm.", "block.layers.{n}.mlp.pre_norm."),
    ("layers.{n}.mlp.up.", "block.layers.{n}.mlp.up_gate_proj."),
    ("layers.{n}.mlp.down.", "block.layers.{n}.mlp.down_proj."),
    ("layers.{n}.attn_post_norm.", "block.layers.{n}.attn_post_norm."),
    ("layers.{n}.mlp_post_norm.", "block.layers.{n}.mlp_post_norm."),
    ("video_out_norm.", "final_norm_video."),
    ("audio_out_norm.", "final_norm_audio."),
    ("video_out.", "final_linear_video."),
    ("audio_out.", "final_linear_audio."),
)


def _prefix_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + r"(\d+)".join(re.escape(part) for part in prefix.split("{n}")))


_PATTERNS = tuple((_prefix_pattern(ours), _prefix_pattern(theirs)) for ours, theirs in _NAMES)


def _rename(name: str, source: int) -> str:
    for patterns, names in zip(_PATTERNS, _NAMES, strict=True):
        match = patterns[source].match(name)
        if match:
            target = names[1 - source]
            return (target.replace("{n}", match.group(1)) if match.groups() else target) + name[match.end() :]
    raise KeyError(f"no MagiHuman parameter is called {name!r}")


def original_name(name: str) -> str:
    """paddock's parameter name -> the released checkpoints' key."""
    return _rename(name, 0)


def paddock_name(key: str) -> str:
    """A released checkpoint's key -> paddock's parameter name."""
    return _rename(key, 1)


def original_state_dict(model: MagiHumanTransformer) -> dict[str, torch.Tensor]:
    """The model's weights under the original key names, with the RoPE bands the original stores."""
    state = {original_name(name): tensor.detach() for name, tensor in model.state_dict().items()}
    state[ROPE_BANDS_KEY] = fourier_bands(model.config.head_dim)
    return state


def _weight_files(folder: Path) -> tuple[str, list[Path]]:
    """The layout's file stem and its safetensors files, single or sharded."""
    for stem in (ORIGINAL_STEM, DIFFUSERS_STEM):
        single, index = folder / f"{stem}.safetensors", folder / f"{stem}.safetensors.index.json"
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
            return stem, [folder / name for name in sorted(set(weight_map.values()))]
        if single.exists():
            return stem, [single]
    raise FileNotFoundError(
        f"{folder}: no {ORIGINAL_STEM}.safetensors, {DIFFUSERS_STEM}.safetensors or a sharded index of either"
    )


def infer_config(shapes: dict[str, tuple[int, ...]]) -> MagiHumanConfig:
    """The architecture implied by a checkpoint's tensor shapes (original key names).

    Frame-local attention leaves no trace in the weights; callers set `local_attn_layers`.
    """
    hidden, video_in = shapes["adapter.video_embedder.weight"]
    layers = sorted({int(key.split(".")[2]) for key in shapes if key.startswith("block.layers.")})
    if layers != list(range(len(layers))):
        raise ValueError(f"checkpoint layers are not numbered 0..n-1: {layers}")

    def copies(layer: int) -> int:
        return shapes[f"block.layers.{layer}.attention.pre_norm.weight"][0] // hidden

    head_dim = shapes["block.layers.0.attention.q_norm.weight"][0] // copies(0)
    heads = hidden // head_dim
    extra = shapes["block.layers.0.attention.linear_qkv.weight"][0] // copies(0) - hidden
    if heads % (2 * head_dim) == 0:
        raise ValueError(
            "attention gating is ambiguous from shapes alone; put a config.json beside the weights"
        )
    gating = extra % (2 * head_dim) != 0
    return MagiHumanConfig(
        num_layers=len(layers),
        hidden_size=hidden,
        head_dim=head_dim,
        num_query_groups=(extra - (heads if gating else 0)) // (2 * head_dim),
        video_in_channels=video_in,
        audio_in_channels=shapes["adapter.audio_embedder.weight"][1],
        text_in_channels=shapes["adapter.text_embedder.weight"][1],
        mm_layers=tuple(i for i in layers if copies(i) == NUM_MODALITIES),
        gelu7_layers=tuple(
            i
            for i in layers
            if shapes[f"block.layers.{i}.mlp.up_gate_proj.weight"][0] == copies(i) * 4 * hidden
        ),
        post_norm_layers=tuple(i for i in layers if f"block.layers.{i}.attn_post_norm.weight" in shapes),
        enable_attn_gating=gating,
    )


def load_transformer(
    folder: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    local_attn_layers: tuple[int, ...] | None = None,
) -> MagiHumanTransformer:
    """Load a transformer from a released-layout folder or a diffusers-style `transformer/`.

    `dtype` is the projections' dtype (the released weights are bf16); `local_attn_layers`
    overrides the config's (the 1080p SR DiT needs `SR_1080P_LOCAL_ATTN_LAYERS`). Tensors are
    read straight onto `device`, one copy.
    """
    folder = Path(folder)
    _, files = _weight_files(folder)
    with ExitStack() as stack:
        handles = [
            stack.enter_context(safe_open(str(path), framework="pt", device=str(device))) for path in files
        ]
        where = {key: handle for handle in handles for key in handle.keys()}  # noqa: SIM118 (not a dict)
        config_path = folder / "config.json"
        if config_path.exists():
            config = MagiHumanConfig.from_json(json.loads(config_path.read_text()))
        else:
            config = infer_config(
                {key: tuple(handle.get_slice(key).get_shape()) for key, handle in where.items()}
            )
        if local_attn_layers is not None:
            config = replace(config, local_attn_layers=local_attn_layers)
        with torch.device("meta"):
            model = MagiHumanTransformer(config, dtype)
        bands = where.pop(ROPE_BANDS_KEY, None)
        if bands is not None and not torch.equal(
            bands.get_tensor(ROPE_BANDS_KEY).cpu().to(torch.float32), fourier_bands(config.head_dim)
        ):
            raise ValueError(
                f"{folder}: {ROPE_BANDS_KEY} differs from the RoPE bands of head_dim {config.head_dim}"
            )
        expected = model.state_dict()
        names = _match_keys(folder, list(where), expected)
        state = {}
        for name, key in names.items():
            tensor = where[key].get_tensor(key)
            if tuple(tensor.shape) != tuple(expected[name].shape):
                shapes = f"{tuple(tensor.shape)}, the model {tuple(expected[name].shape)}"
                raise ValueError(f"{folder}: {key} has shape {shapes}")
            state[name] = tensor.to(expected[name].dtype)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def _match_keys(folder: Path, keys: list[str], expected: dict[str, torch.Tensor]) -> dict[str, str]:
    """paddock name -> checkpoint key for every parameter, or an error naming what does not match."""
    names, unexpected = {}, []
    for key in keys:
        try:
            name = paddock_name(key)
        except KeyError:
            name = ""
        if name in expected:
            names[name] = key
        else:
            unexpected.append(key)
    missing = [original_name(name) for name in expected if name not in names]
    if missing or unexpected:
        problems = f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        raise ValueError(f"{folder}: checkpoint does not match the model: {problems}")
    return names


def save_transformer(
    model: MagiHumanTransformer,
    folder: str | Path,
    *,
    layout: Literal["original", "diffusers"] = "diffusers",
    max_shard_bytes: int | None = None,
) -> None:
    """Write `model` under the original key names: layout "original" (`model.safetensors`) or
    "diffusers" (`config.json` + `diffusion_pytorch_model.safetensors`); sharded with an index
    when `max_shard_bytes` is given."""
    if layout not in ("original", "diffusers"):
        raise ValueError(f"unknown checkpoint layout {layout!r}; choose original or diffusers")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = ORIGINAL_STEM if layout == "original" else DIFFUSERS_STEM
    state = {key: tensor.contiguous().cpu() for key, tensor in original_state_dict(model).items()}
    if layout == "diffusers":
        (folder / "config.json").write_text(json.dumps(model.config.to_json(), indent=2) + "\n")
    if max_shard_bytes is None:
        save_file(state, str(folder / f"{stem}.safetensors"))
        return
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        name = f"{stem}-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name))
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / f"{stem}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
