"""Weights on disk: key names both ways, both layouts, strict loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model.backends.magihuman.checkpoint import (
    ROPE_BANDS_KEY,
    infer_config,
    load_transformer,
    original_name,
    original_state_dict,
    paddock_name,
    save_transformer,
)
from model.backends.magihuman.config import released_config
from model.backends.magihuman.packing import PackingConfig, pack
from model.backends.magihuman.transformer import MagiHumanTransformer
from tests.support.magihuman import make_sample


def outputs(model: MagiHumanTransformer) -> tuple[torch.Tensor, torch.Tensor]:
    batch = pack([make_sample(2, 2, 4, 5, seed=0)], PackingConfig())
    with torch.no_grad():
        return model(batch)


def test_every_parameter_name_converts_to_the_released_key_and_back(
    tiny_transformer: MagiHumanTransformer,
) -> None:
    for name in tiny_transformer.state_dict():
        assert paddock_name(original_name(name)) == name
    assert original_name("layers.3.attn.qkv.weight") == "block.layers.3.attention.linear_qkv.weight"
    assert original_name("layers.0.mlp.up.weight") == "block.layers.0.mlp.up_gate_proj.weight"
    assert original_name("video_out_norm.weight") == "final_norm_video.weight"
    assert paddock_name("adapter.text_embedder.bias") == "text_embed.bias"
    with pytest.raises(KeyError):
        paddock_name("block.layers.0.attention.linear_qkv_extra.weight")


@pytest.mark.parametrize("layout", ["original", "diffusers"])
@pytest.mark.parametrize("shard_bytes", [None, 40_000])
def test_a_saved_model_loads_back_whole(
    tiny_transformer: MagiHumanTransformer, tmp_path: Path, layout: str, shard_bytes: int | None
) -> None:
    save_transformer(tiny_transformer, tmp_path, layout=layout, max_shard_bytes=shard_bytes)  # type: ignore[arg-type]
    stem = "model" if layout == "original" else "diffusion_pytorch_model"
    if shard_bytes:
        index = json.loads((tmp_path / f"{stem}.safetensors.index.json").read_text())
        assert len(set(index["weight_map"].values())) > 1
        assert ROPE_BANDS_KEY in index["weight_map"]
    else:
        assert "block.layers.0.attention.linear_qkv.weight" in load_file(tmp_path / f"{stem}.safetensors")
    loaded = load_transformer(tmp_path, dtype=torch.float32)
    assert loaded.config == tiny_transformer.config
    for name, tensor in tiny_transformer.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    for ours, theirs in zip(outputs(loaded), outputs(tiny_transformer), strict=True):
        assert torch.equal(ours, theirs)


def write_original(state: dict[str, torch.Tensor], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({key: t.contiguous() for key, t in state.items()}, str(folder / "model.safetensors"))
    return folder


def test_a_missing_tensor_is_named(tiny_transformer: MagiHumanTransformer, tmp_path: Path) -> None:
    state = original_state_dict(tiny_transformer)
    del state["block.layers.2.mlp.down_proj.weight"]
    with pytest.raises(ValueError, match=r"missing \['block.layers.2.mlp.down_proj.weight'\]"):
        load_transformer(write_original(state, tmp_path), dtype=torch.float32)


def test_an_unexpected_tensor_is_named(tiny_transformer: MagiHumanTransformer, tmp_path: Path) -> None:
    state = original_state_dict(tiny_transformer) | {"block.layers.1.attention.lora_a.weight": torch.zeros(2)}
    with pytest.raises(ValueError, match=r"unexpected \['block.layers.1.attention.lora_a.weight'\]"):
        load_transformer(write_original(state, tmp_path), dtype=torch.float32)


def test_a_tensor_of_the_wrong_shape_is_refused(
    tiny_transformer: MagiHumanTransformer, tmp_path: Path
) -> None:
    save_transformer(tiny_transformer, tmp_path)
    state = load_file(tmp_path / "diffusion_pytorch_model.safetensors")
    state["final_linear_audio.weight"] = torch.zeros(32, 64)
    save_file(state, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(ValueError, match=r"final_linear_audio\.weight has shape"):
        load_transformer(tmp_path, dtype=torch.float32)


def test_rope_bands_of_another_model_are_refused(
    tiny_transformer: MagiHumanTransformer, tmp_path: Path
) -> None:
    state = original_state_dict(tiny_transformer)
    state[ROPE_BANDS_KEY] = state[ROPE_BANDS_KEY] * 2
    with pytest.raises(ValueError, match="RoPE bands"):
        load_transformer(write_original(state, tmp_path), dtype=torch.float32)


def test_a_released_checkpoint_without_bands_or_config_loads(
    tiny_transformer: MagiHumanTransformer, tmp_path: Path
) -> None:
    state = original_state_dict(tiny_transformer)
    del state[ROPE_BANDS_KEY]
    loaded = load_transformer(write_original(state, tmp_path), dtype=torch.bfloat16, local_attn_layers=(1, 2))
    assert loaded.config.local_attn_layers == (1, 2)
    assert (
        loaded.matmul_dtype == torch.bfloat16 and loaded.layers[0].attn.q_norm.weight.dtype == torch.float32
    )


def test_the_released_15b_layout_is_read_from_shapes_alone() -> None:
    with torch.device("meta"):  # shapes only
        model = MagiHumanTransformer(released_config("base"), torch.bfloat16)
    shapes = {key: tuple(t.shape) for key, t in original_state_dict(model).items() if key != ROPE_BANDS_KEY}
    assert shapes["block.layers.0.mlp.up_gate_proj.weight"] == (3 * 20480, 5120)
    assert shapes["block.layers.4.mlp.up_gate_proj.weight"] == (2 * 13652, 5120)
    assert shapes["block.layers.4.attention.linear_qkv.weight"] == (5120 + 2 * 1024 + 40, 5120)
    assert infer_config(shapes) == released_config("base")
    assert sum(t.numel() for t in model.parameters()) / 1e9 == pytest.approx(15.3, abs=0.1)


def test_a_converted_config_json_reads_and_a_foreign_one_does_not(
    tiny_transformer: MagiHumanTransformer, tmp_path: Path
) -> None:
    save_transformer(tiny_transformer, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    extra = {"_class_name": "MagiHumanDiT", "tread_selection_rate": 0.5, "patch_size": [1, 2, 2]}
    (tmp_path / "config.json").write_text(json.dumps(config | extra))
    assert load_transformer(tmp_path, dtype=torch.float32).config == tiny_transformer.config
    (tmp_path / "config.json").write_text(json.dumps(config | {"num_experts": 8}))
    with pytest.raises(ValueError, match="unknown MagiHuman field 'num_experts'"):
        load_transformer(tmp_path, dtype=torch.float32)


def test_a_folder_without_weights_says_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model.safetensors"):
        load_transformer(tmp_path)
