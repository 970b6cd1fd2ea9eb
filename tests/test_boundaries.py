"""The package boundary of DESIGN.md §1 at run time: importing the facade loads no torch or ray
(import-linter checks the static imports, tests/test_architecture.py; this catches dynamic ones)."""

from __future__ import annotations

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
