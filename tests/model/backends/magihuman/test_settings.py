"""A MagiHuman model's options: checked once, with errors that name the option; where its
components are on disk in either layout; the registry's YAML example reads."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from model import registry
from model.backends.magihuman.components import ComponentPaths
from model.backends.magihuman.settings import MagiHumanSettings, SRSettings
from model.registry import ModelSpec, TaskFamily


def spec(**options: Any) -> ModelSpec:
    return ModelSpec(name="m", family=TaskFamily.T2V, backend="magihuman", size_multiple=32, options=options)


def test_defaults_are_the_distilled_dit_without_sr() -> None:
    settings = MagiHumanSettings.of(spec())
    assert (settings.variant, settings.guided, settings.sr) == ("distill", False, None)
    base = MagiHumanSettings.of(spec(variant="base", audio_guidance_scale=4.0))
    assert base.guided and base.audio_guidance_scale == 4.0 and base.late_guidance_scale == 2.0


@pytest.mark.parametrize(
    ("changes", "options", "message"),
    [
        ({}, {"variant": "turbo"}, "variant must be one of"),
        ({}, {"sr": {"steps": 5}}, "at least base_pixels"),
        ({}, {"sr": {"base_pixels": 114688, "shift": 3}}, r"unknown keys \['shift'\]"),
        ({}, {"sr": {"base_pixels": 100}}, "base_pixels >= 1024"),
        ({"cfg_parallel": True}, {}, "cfg_parallel"),
        ({"size_multiple": 16}, {}, "multiple of 32"),
    ],
)
def test_bad_options_are_refused_by_name(
    changes: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MagiHumanSettings.of(replace(spec(**options), **changes))


def test_the_first_stage_keeps_the_outputs_aspect_at_about_base_pixels() -> None:
    sr = SRSettings(base_pixels=448 * 256)
    assert sr.base_size(1920, 1088) == (448, 256)  # the released 1080p pipeline's base size
    assert sr.base_size(896, 512) == (448, 256)  # and its 540p one's
    assert sr.base_size(64, 64) == (64, 64)  # never larger than the output


def test_a_diffusers_style_folder_holds_every_component(tmp_path: Path) -> None:
    for name in ("transformer", "text_encoder", "vae", "audio_vae", "sr"):
        (tmp_path / name).mkdir()
    paths = MagiHumanSettings.of(spec()).component_paths(str(tmp_path))
    assert paths == ComponentPaths(
        tmp_path / "transformer", tmp_path / "text_encoder", tmp_path / "text_encoder", tmp_path / "vae",
        tmp_path / "audio_vae", None,
    )  # fmt: skip
    with_sr = MagiHumanSettings.of(spec(sr={"base_pixels": 1024}, vae="/elsewhere/vae"))
    assert with_sr.component_paths(str(tmp_path)).sr == tmp_path / "sr"
    assert with_sr.component_paths(str(tmp_path)).vae == Path("/elsewhere/vae")


def test_a_released_layout_transformer_takes_its_components_from_the_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"options \['vae', 'audio_vae'\] must name"):
        MagiHumanSettings.of(spec(text_encoder="/t")).component_paths(str(tmp_path))
    options = {"text_encoder": "/t5", "vae": "/vae", "audio_vae": "/audio"}
    paths = MagiHumanSettings.of(spec(**options)).component_paths(str(tmp_path))
    assert paths == ComponentPaths(tmp_path, Path("/t5"), Path("/t5"), Path("/vae"), Path("/audio"), None)
    with pytest.raises(ValueError, match=r"options\.sr needs an sr/ folder"):
        MagiHumanSettings.of(spec(**options, sr={"base_pixels": 1024})).component_paths(str(tmp_path))
    sr = {"base_pixels": 1024, "checkpoint": "/sr1080"}
    assert MagiHumanSettings.of(spec(**options, sr=sr)).component_paths(str(tmp_path)).sr == Path("/sr1080")


README = Path(__file__).resolve().parents[4] / "README.md"


@pytest.mark.parametrize("source", ["registry docstring", "README"])
def test_the_documented_examples_read_and_their_magihuman_models_are_valid(
    source: str, tmp_path: Path
) -> None:
    if source == "README":
        blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
        text = next(block for block in blocks if "backend: magihuman" in block)
    else:
        assert registry.load_registry.__doc__ is not None
        text = textwrap.dedent(registry.load_registry.__doc__.split("::\n", 1)[1])
    example = tmp_path / "models.yaml"
    example.write_text(text)
    magihuman = [s for s in registry.load_registry(example).values() if s.backend == "magihuman"]
    assert len(magihuman) == 2
    distill, base = (MagiHumanSettings.of(s) for s in magihuman)
    assert distill.sr is not None and distill.sr.local_attention and not distill.guided
    assert base.guided and base.sr is None
    assert all(s.native_frames(10) <= s.max_native_frames and s.native_frames(10) % 4 == 1 for s in magihuman)
