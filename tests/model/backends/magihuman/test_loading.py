"""A MagiHuman model served from disk, in both layouts, makes the clips of the model in memory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from model.backends import create_backend, save_tiny
from model.backends.magihuman.checkpoint import save_transformer
from model.backends.magihuman.components import build_tiny_components, save_components
from model.registry import TaskFamily
from tests.support.magihuman import SR_OPTIONS, clip_diff, magihuman_spec, make_job


def test_a_diffusers_style_folder_serves_the_tiny_model_with_its_sr_stage(tmp_path: Path) -> None:
    options = {"sr": {**SR_OPTIONS["sr"], "local_attention": False}}
    save_components(build_tiny_components(0, with_sr=True, sr_local_attention=False), tmp_path)
    loaded = create_backend(replace(magihuman_spec(**options), checkpoint=str(tmp_path)))
    job = make_job(1, TaskFamily.I2V)
    assert clip_diff(loaded.generate(job), create_backend(magihuman_spec(**options)).generate(job)) == 0.0


def test_a_released_layout_transformer_with_components_named_by_options(tmp_path: Path) -> None:
    tiny = build_tiny_components(0)
    save_transformer(tiny.transformer, tmp_path / "distill", layout="original", max_shard_bytes=200_000)
    assert len(list((tmp_path / "distill").glob("model-*.safetensors"))) > 1  # sharded, with its index
    tiny.text_encoder.save_pretrained(tmp_path / "t5gemma")
    tiny.tokenizer.save_pretrained(tmp_path / "t5gemma")  # a released encoder keeps its tokenizer beside it
    tiny.vae.save_pretrained(tmp_path / "wan22-vae")
    tiny.audio_vae.save_pretrained(tmp_path / "oobleck")
    options = {
        "text_encoder": tmp_path / "t5gemma",
        "vae": tmp_path / "wan22-vae",
        "audio_vae": tmp_path / "oobleck",
    }
    spec = replace(magihuman_spec(**options), checkpoint=str(tmp_path / "distill"))
    job = make_job(2)
    assert (
        clip_diff(create_backend(spec).generate(job), create_backend(magihuman_spec()).generate(job)) == 0.0
    )


def test_save_tiny_writes_the_folder_a_spec_loads(tmp_path: Path) -> None:
    folder = save_tiny("magihuman", tmp_path / "tiny")
    assert {p.name for p in folder.iterdir()} >= {
        "transformer",
        "vae",
        "audio_vae",
        "text_encoder",
        "tokenizer",
    }
    assert (folder / "transformer" / "config.json").is_file()
