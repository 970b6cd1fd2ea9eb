"""The Helm chart's sources (helm/) and the Dockerfile agree with the code and with themselves:
what a template engine cannot see (a `.Values` path that does not exist renders as empty, an env
name that is no setting is ignored). Rendering is checked with a real helm in test_helm_*.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from server.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
TEMPLATES = CHART / "templates"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
CI_VALUES = [yaml.safe_load(p.read_text()) for p in sorted((CHART / "ci").glob("*-values.yaml"))]
SETTINGS = {f"PADDOCK_{name.upper()}" for name in Settings.model_fields}

_VALUES_REF = re.compile(r"\.Values\.([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)")
_ENV_NAME = re.compile(r"\bPADDOCK_[A-Z0-9_]+\b")


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.is_file())


def has_path(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_chart_yaml() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "paddock"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    assert chart["appVersion"]
    # No Bitnami or MinIO sub-charts (ray_serve.md §4.4): the optional Redis is our own template.
    assert not chart.get("dependencies")


def test_every_values_reference_exists() -> None:
    missing = {
        f"{path.relative_to(CHART)}: .Values.{ref}"
        for path in template_files()
        for ref in _VALUES_REF.findall(path.read_text())
        if not has_path(VALUES, ref)
    }
    assert not missing, sorted(missing)


def _key_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(indent, key, documented) for each mapping key line of a values file."""
    doc_pending = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            doc_pending = True
        elif stripped.startswith("#") or not stripped:
            continue
        elif (match := re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)) is not None:
            yield len(match.group(1)), match.group(2), doc_pending
            doc_pending = False
        else:
            doc_pending = False


def test_every_value_is_documented() -> None:
    """Each key has a `# --` comment, unless it is a block header or under a documented key."""
    undocumented = []
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented) of the open parents
    for indent, key, documented in _key_lines((CHART / "values.yaml").read_text()):
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not documented and not any(doc for _, _, doc in stack):
            stack_path = ".".join(k for _, k, _ in stack)
            undocumented.append((indent, f"{stack_path}.{key}".lstrip(".")))
        stack.append((indent, key, documented))
    leaves = {path for _, path in undocumented if not isinstance(_lookup(VALUES, path), dict)}
    assert not leaves, sorted(leaves)


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def test_env_names_are_real_settings() -> None:
    used = {name for path in template_files() for name in _ENV_NAME.findall(path.read_text())}
    assert {"PADDOCK_QUEUE_URL", "PADDOCK_STORAGE_URL", "PADDOCK_API_KEYS"} <= used
    assert not used - SETTINGS, sorted(used - SETTINGS)
    for values in (VALUES, *CI_VALUES):
        extra = {f"PADDOCK_{name.upper()}" for name in values.get("settings", {})}
        assert not extra - SETTINGS, sorted(extra - SETTINGS)


def test_templates_cover_the_design() -> None:
    names = {str(p.relative_to(TEMPLATES)) for p in template_files()}
    expected = {
        "_helpers.tpl", "NOTES.txt", "api-deployment.yaml", "api-service.yaml", "api-hpa.yaml",
        "worker-deployment.yaml", "worker-rayservice.yaml", "configmap.yaml", "secret.yaml",
        "servicemonitor.yaml", "redis-statefulset.yaml", "redis-service.yaml", "tests/submit-job.yaml",
        "api-ingress.yaml", "pdb.yaml", "validate.yaml",
    }  # fmt: skip
    assert expected <= names


# --- Dockerfile --------------------------------------------------------------------------------


def _stages(text: str) -> dict[str, str]:
    """Stage name → the stage's text."""
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\w+)\s*$", text, flags=re.M | re.I)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_dockerfile_targets() -> None:
    stages = _stages((ROOT / "Dockerfile").read_text())
    assert {"api", "worker"} <= set(stages)
    api, worker = stages["api"], stages["worker"]
    # The facade image installs the base dependencies only: no extras, no torch, no ray.
    assert re.search(r"pip install \.(\s|$)", api) and "torch==" not in api and "[worker" not in api
    assert 'pip install ".[worker,ray]"' in worker
    assert "RAY_USAGE_STATS_ENABLED=0" in worker
    for stage in (api, worker):
        users = re.findall(r"^USER\s+(\S+)", stage, re.M)
        assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'ENTRYPOINT \["paddock"\]\s+CMD \["api"\]', api)
    assert re.search(r'ENTRYPOINT \["paddock"\]\s+CMD \["worker"\]', worker)


def test_dockerfile_pins_the_same_torch_as_pyproject() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pins = set(re.findall(r"torch==([\w.]+)", dockerfile))
    assert pins == {"2.13.0"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject


def test_dockerignore_keeps_weights_and_venv_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "paddock-data", "*.safetensors"} <= set(ignored)
