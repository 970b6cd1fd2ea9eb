"""Profiles: the issue's YAML job mix, class names, the create bodies, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.profile import Profile

ISSUE_EXAMPLE = """
jobs:
  - {weight: 3, model: happyhorse-1.0-i2v, resolution: 720P, duration: 5, image: "synthetic:1280x720"}
  - {weight: 1, model: happyhorse-1.0-t2v, resolution: 1080P, duration: 3, ratio: "9:16"}
  - {weight: 1, model: happyhorse-1.0-r2v, references: ["synthetic:800x800", "a.png"],
     prompt: "[Image 1] runs"}
  - {weight: 1, model: happyhorse-1.0-video-edit, video: "synthetic:640x360", video_seconds: 4}
"""


def _profile(tmp_path: Path, text: str) -> Profile:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return Profile.load(path)


def test_the_issue_example(tmp_path: Path) -> None:
    profile = _profile(tmp_path, ISSUE_EXAMPLE)
    assert [j.name for j in profile.jobs] == [
        "1.0-i2v-720P-5s",
        "1.0-t2v-1080P-3s-9x16",
        "1.0-r2v-720P-5s",
        "1.0-video-edit-720P-edit",
    ]
    assert profile.weights == [3.0, 1.0, 1.0, 1.0]
    assert profile.by_name("1.0-r2v-720P-5s").references == ("synthetic:800x800", "a.png")
    assert profile.jobs[3].video_seconds == 4.0


def test_create_bodies_are_dashscope_bodies(tmp_path: Path) -> None:
    i2v, t2v, r2v, edit = _profile(tmp_path, ISSUE_EXAMPLE).jobs
    media = [{"type": "first_frame", "url": "data:image/jpeg;base64,AAAA"}]
    body = json.loads(i2v.body(media, seed=7))
    assert body == {
        "model": "happyhorse-1.0-i2v",
        "input": {"prompt": i2v.prompt, "media": media},
        "parameters": {"resolution": "720P", "watermark": True, "seed": 7, "duration": 5},
    }
    assert json.loads(t2v.body([], seed=1))["parameters"]["ratio"] == "9:16"
    assert "media" not in json.loads(t2v.body([], seed=1))["input"]
    assert json.loads(r2v.body([], seed=1))["input"]["prompt"] == "[Image 1] runs"
    assert "duration" not in json.loads(edit.body([], seed=1))["parameters"]  # edit follows its video


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: []", "non-empty list"),
        ("jobs:\n  - {weight: 1}", "needs at least a 'model'"),
        ("jobs:\n  - {model: m, colour: red}", "unknown keys"),
        ("jobs:\n  - {model: m, weight: -1}", "must not be negative"),
        ("jobs:\n  - {model: m}\n  - {model: m}", "share a name"),
    ],
)
def test_bad_profiles_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _profile(tmp_path, text)


@pytest.mark.parametrize("name", ["validate.yaml", "mix.yaml", "gpu-example.yaml"])
def test_the_shipped_profiles_load(name: str) -> None:
    profile = Profile.load(Path(__file__).resolve().parents[2] / "loadtests" / "profiles" / name)
    assert profile.jobs and all(job.model.startswith("happyhorse-") for job in profile.jobs)
