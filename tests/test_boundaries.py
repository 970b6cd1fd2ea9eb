"""The package boundary of DESIGN.md §1: the facade never loads torch or ray; model never imports server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_facade_imports_no_torch_or_ray() -> None:
    code = (
        "import sys\n"
        "import server.api.app, server.cli, server.jobs.redis, server.media\n"
        "heavy = ('torch', 'ray', 'diffusers', 'transformers')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_model_never_imports_server() -> None:
    for path in (REPO / "model").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "server" or n.startswith("server.") for n in names), f"{path} imports {names}"
