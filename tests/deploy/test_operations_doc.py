"""docs/operations.md stays true: every metric and alert paddock has is explained, every command
in it is run here (curl and redis-cli on a live stack, helm lint and template for real) or, for
the `paddock` commands, parsed by the real CLI with every option it uses."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shlex
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from server.cli import main as paddock_main
from server.metrics import METRICS
from tests.deploy.helm import HELM, ROOT
from tests.deploy.live_stack import LiveStack

DOC = ROOT / "docs" / "operations.md"
TEXT = DOC.read_text()
RULES = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yaml").read_text())
REPO_DIRS = ("deploy/", "helm/", "server/", "model/", "docs/", "tests/", "loadtests/", "benchmarks/")
REPO_PATH = re.compile(r"`((?:" + "|".join(map(re.escape, REPO_DIRS)) + r")[\w./-]+)`")


def commands() -> Iterator[str]:
    """Each command of the doc's bash blocks, continuation lines joined, comments dropped."""
    for block in re.findall(r"```bash\n(.*?)```", TEXT, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                yield line


def commands_of(program: str) -> list[str]:
    return [c for c in commands() if c.split()[0] == program]


def test_every_metric_and_alert_is_explained() -> None:
    rows = {m.group(1) for m in re.finditer(r"^\| `([\w:]+)` \|", TEXT, re.M)}
    assert {spec.name for spec in METRICS} <= rows
    alerts = {rule["alert"] for group in RULES["groups"] for rule in group["rules"]}
    assert alerts <= rows


def test_repository_paths_exist() -> None:
    named = set(REPO_PATH.findall(TEXT))
    assert named, "the doc names no file"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing


def test_readme_links_the_guide() -> None:
    assert "(docs/operations.md)" in (ROOT / "README.md").read_text()


def _help_of(words: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        paddock_main([*words, "--help"])
    assert done.value.code == 0, words
    return out.getvalue()


@pytest.mark.parametrize("command", commands_of("paddock"))
def test_paddock_commands_parse(command: str) -> None:
    argv = shlex.split(command)[1:]
    words = list(itertools.takewhile(lambda a: not a.startswith("-"), argv))
    usage = _help_of(words)
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert option in usage, f"{command}: {option} is not an option of `paddock {' '.join(words)}`"


@pytest.mark.skipif(HELM is None, reason="no helm in .tools/bin or on PATH (`make helm-tools`)")
@pytest.mark.parametrize("command", commands_of("helm"))
def test_helm_commands_run_or_name_real_files(command: str) -> None:
    assert HELM is not None
    argv = shlex.split(command)
    for path in (argv[i + 1] for i, a in enumerate(argv) if a == "-f"):
        assert (ROOT / path).is_file(), path
    if argv[1] in {"lint", "template"}:
        done = subprocess.run(
            [HELM, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_compose_commands_name_real_files() -> None:
    found = commands_of("docker")
    assert found
    for command in found:
        argv = shlex.split(command)
        assert (ROOT / argv[argv.index("-f") + 1]).is_file(), command


def _shell(command: str, stack: LiveStack) -> subprocess.CompletedProcess[str]:
    port = stack.server.base_url.rsplit(":", 1)[1]
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
        env={**os.environ, "KEY": stack.server.keys[0], "PADDOCK_QUEUE_URL": stack.queue_url},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_curl_and_redis_commands_run_on_a_live_stack(live_stack: LiveStack) -> None:
    """The guide's commands for a running stack, on one: `paddock serve` on a Redis started as
    the chart starts it, so the guide's checks of that Redis must pass."""
    runnable = [*commands_of("curl"), *commands_of("redis-cli")]
    assert len(runnable) >= 5
    for command in runnable:
        done = _shell(command, live_stack)
        assert done.returncode == 0 and not re.search(r"\(error\)|ERR", done.stdout), (command, done)
        assert done.stdout.strip() or "XREVRANGE" in command, command
    answers = {
        tuple(_shell(c, live_stack).stdout.split()) for c in commands_of("redis-cli") if "CONFIG GET" in c
    }
    assert {("appendonly", "yes"), ("maxmemory-policy", "noeviction")} <= answers
