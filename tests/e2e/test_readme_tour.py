"""The README's "A 30-second tour", run as written against `paddock serve` on its defaults.

The blocks are read out of README.md, so the README cannot drift from what works. The one
change made to them is the port: the server here listens on a free one, not on 8000.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.api.schemas import output_size
from server.api.web.sample import SIZE
from tests.live_server import REPO, LiveServer, paddock_process
from tests.videos import assert_delivered

PUBLISHED = "http://127.0.0.1:8000"
SECONDS = 5  # what the tour asks for

pytestmark = pytest.mark.slow


def tour_blocks(language: str) -> list[str]:
    """The fenced `language` blocks of the README's tour section, in order."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## A 30-second tour\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """`paddock serve` with no keys configured (it makes one, as `make run` does), and a working
    directory where `paddock-data/api_key` is that key, as it is beside `make run`."""
    tmp = tmp_path_factory.mktemp("tour")
    with paddock_process(tmp, env={"PADDOCK_API_KEYS": "", "OMP_NUM_THREADS": "1"}) as live:
        workdir = tmp / "workdir"
        workdir.mkdir()
        (workdir / "paddock-data").symlink_to(live.data_dir)
        yield live, workdir


def test_paddock_serve_prints_a_link_that_fills_in_the_key(served: tuple[LiveServer, Path]) -> None:
    live, _ = served
    key = (live.data_dir / "api_key").read_text().strip()
    assert f"paddock: open the playground at {live.base_url}/#key={key}" in live.log()


def test_the_tour_works_as_written(served: tuple[LiveServer, Path]) -> None:
    live, workdir = served
    [shell] = tour_blocks("bash")
    [python] = tour_blocks("python")
    width, height = output_size("720P", None, SIZE)  # i2v keeps the sample's 3:2

    curl = subprocess.run(
        ["bash", "-e", "-c", shell.replace(PUBLISHED, live.base_url)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert curl.returncode == 0, curl.stderr
    assert '"task_status":"PENDING"' in curl.stdout and '"task_status":"SUCCEEDED"' in curl.stdout
    assert_delivered((workdir / "horse.mp4").read_bytes(), width, height, SECONDS * 24)

    sdk = subprocess.run(
        [sys.executable, "-c", python.replace(PUBLISHED, live.base_url)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert sdk.returncode == 0, sdk.stderr
    status, video_url = sdk.stdout.split()
    assert status == "SUCCEEDED"
    assert_delivered(httpx.get(video_url, timeout=30).content, width, height, SECONDS * 24)
