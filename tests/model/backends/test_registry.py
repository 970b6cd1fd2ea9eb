"""model.backends: backends by name, imported on demand, and the tiny models saved by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model.backends import BACKENDS, backend_class, save_tiny
from model.registry import TaskFamily

REPO = Path(__file__).resolve().parents[3]
FAMILY_MODULES = ("model.backends.wan", "model.backends.ltx2", "model.backends.magihuman")


def loaded_modules(code: str) -> set[str]:
    """The model.backends.* modules a fresh interpreter holds after running `code`."""
    probe = f"import sys\n{code}\nprint('\\n'.join(m for m in sys.modules if m.startswith('model.')))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_registry_imports_no_backend_and_no_torch() -> None:
    modules = loaded_modules("import model.backends\nassert 'torch' not in sys.modules")
    assert not any(m.startswith(FAMILY_MODULES) for m in modules), sorted(modules)


# A fresh interpreter per backend (torch and diffusers load in each: ~10 s apiece on 2 cores).
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "own", "others"),
    [
        ("wan-vace", "model.backends.wan.vace", ("model.backends.ltx2", "model.backends.wan.ti2v")),
        ("ltx2", "model.backends.ltx2.backend", ("model.backends.wan",)),
    ],
)
def test_loading_one_backend_imports_no_other(name: str, own: str, others: tuple[str, ...]) -> None:
    modules = loaded_modules(f"from model.backends import backend_class\nbackend_class({name!r})")
    assert own in modules
    assert not any(m.startswith(others) for m in modules), sorted(modules)
    assert "model.engine.engine" not in modules  # backends never import the engine


def test_every_registered_name_is_its_class_name() -> None:
    assert set(BACKENDS) == {"wan-ti2v", "wan-t2v", "wan-i2v", "wan-vace", "ltx2", "magihuman"}
    for name in BACKENDS:
        assert backend_class(name).name == name
    assert backend_class("wan-i2v").families == frozenset({TaskFamily.I2V})
    assert backend_class("wan-t2v").families == frozenset({TaskFamily.T2V})
    assert backend_class("wan-vace").families == frozenset({TaskFamily.R2V, TaskFamily.VIDEO_EDIT})


def test_unknown_backend_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend 'no-such-backend'; known: \\['ltx2'"):
        save_tiny("no-such-backend", tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(("name", "pipeline"), [("wan-ti2v", "WanPipeline"), ("wan-vace", "WanVACEPipeline")])
def test_save_tiny_writes_a_diffusers_folder(name: str, pipeline: str, tmp_path: Path) -> None:
    folder = save_tiny(name, tmp_path / name)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == pipeline
    assert (folder / "transformer" / "config.json").is_file() and (folder / "vae").is_dir()
