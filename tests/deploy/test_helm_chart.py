"""The Helm chart (helm/) and the Dockerfile agree with the code and with themselves.

No helm binary is needed: the chart is checked as text and YAML (values paths, schema, settings
names, template blocks). When `helm` is on PATH, `helm lint` and `helm template` run as well;
without it those tests skip (helm is not part of `make test`'s contract).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from model.registry import load_registry
from server.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
TEMPLATES = CHART / "templates"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
CI_VALUES = yaml.safe_load((CHART / "ci" / "ci-values.yaml").read_text())
SCHEMA = yaml.safe_load((CHART / "values.schema.json").read_text())
SETTINGS = {f"PADDOCK_{name.upper()}" for name in Settings.model_fields}

_VALUES_REF = re.compile(r"\.Values\.([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)")
_ENV_NAME = re.compile(r"\bPADDOCK_[A-Z0-9_]+\b")
_ACTION = re.compile(r"\{\{-?\s*(/\*.*?\*/|[^}]*?)\s*-?\}\}", re.S)
_OPENERS = {"if", "with", "range", "define", "block"}


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.is_file())


def merged(base: Any, override: Any) -> Any:
    """Helm's values merge: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return override


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


def test_values_validate_against_schema() -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    validator.validate(VALUES)
    validator.validate(merged(VALUES, CI_VALUES))


@pytest.mark.parametrize(
    "override",
    [
        {"worker": {"mode": "kubernetes"}},
        {"image": {"tag": "latest"}},
        {"worker": {"gpusPerReplica": -1}},
        {"storage": {"url": "minio://bucket"}},
        {"queue": {"url": "http://redis:6379"}},
        {"api": {"replica": 3}},  # a typo is an unknown key
    ],
)
def test_schema_rejects_bad_values(override: dict[str, Any]) -> None:
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(merged(VALUES, override)))
    assert errors, override


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
    for values in (VALUES, CI_VALUES):
        extra = {f"PADDOCK_{name.upper()}" for name in values.get("settings", {})}
        assert not extra - SETTINGS, sorted(extra - SETTINGS)


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_blocks_balance(path: Path) -> None:
    text = path.read_text()
    actions = _ACTION.findall(text)
    # Every "{{" opens an action that closes ("}}" alone is literal text, e.g. the end of JSON).
    assert len(actions) == text.count("{{"), f"{path.name}: an unclosed action"
    depth = 0
    for action in actions:
        word = action.split()[0] if action.split() and not action.startswith("/*") else ""
        if word in _OPENERS:
            depth += 1
        elif word == "end":
            depth -= 1
            assert depth >= 0, f"{path.name}: an end without an opener"
    assert depth == 0, f"{path.name}: {depth} block(s) left open"


def test_templates_cover_the_design() -> None:
    names = {str(p.relative_to(TEMPLATES)) for p in template_files()}
    expected = {
        "_helpers.tpl", "NOTES.txt", "api-deployment.yaml", "api-service.yaml", "api-hpa.yaml",
        "worker-deployment.yaml", "worker-rayservice.yaml", "configmap.yaml", "secret.yaml",
        "servicemonitor.yaml", "redis-statefulset.yaml", "redis-service.yaml", "tests/submit-job.yaml",
    }  # fmt: skip
    assert expected <= names
    api = (TEMPLATES / "api-deployment.yaml").read_text()
    assert "path: /healthz" in api and "path: /readyz" in api
    worker = (TEMPLATES / "worker-deployment.yaml").read_text() + (TEMPLATES / "_helpers.tpl").read_text()
    assert "nvidia.com/gpu" in worker and "medium: Memory" in worker and "mountPath: /dev/shm" in worker
    ray = (TEMPLATES / "worker-rayservice.yaml").read_text()
    assert "kind: RayService" in ray and "server.worker.deployment:build_app" in ray
    assert 'num-cpus: "0"' in ray and "enableInTreeAutoscaling: true" in ray
    redis = (TEMPLATES / "redis-statefulset.yaml").read_text()
    assert '"--appendonly"\n            - "yes"' in redis and '"noeviction"' in redis
    hook = (TEMPLATES / "tests" / "submit-job.yaml").read_text()
    assert '"helm.sh/hook": test' in hook and "SUCCEEDED" in hook


def test_ray_import_path_exists_when_the_module_does() -> None:
    module = ROOT / "server" / "worker" / "deployment.py"
    if not module.exists():
        pytest.skip("server/worker/deployment.py is not written yet")
    source = module.read_text()
    assert re.search(r"^def build_app\(", source, re.M)
    # The chart passes build_app's args, never a `deployments:` override that would drop its policy.
    ray = (TEMPLATES / "worker-rayservice.yaml").read_text()
    for arg in re.findall(r'"(\w+)" (?:\$gpus|1|\(dict|\(int)', ray):
        assert f'"{arg}"' in source, arg
    assert "deployments:" not in ray


def test_ci_models_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(CI_VALUES["worker"]["modelsConfig"]))
    registry = load_registry(path)
    assert CI_VALUES["tests"]["model"] in registry
    assert all(spec.checkpoint is None and spec.devices == ("cpu",) for spec in registry.values())


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


# --- helm itself, when installed ------------------------------------------------------------------

HELM = shutil.which("helm")
needs_helm = pytest.mark.skipif(HELM is None, reason="no helm binary on PATH (not in Debian's apt)")


def _helm(*args: str) -> str:
    assert HELM is not None
    done = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_helm
def test_helm_lint() -> None:
    _helm("lint", "--strict", str(CHART))
    _helm("lint", "--strict", str(CHART), "-f", str(CHART / "ci" / "ci-values.yaml"))


@needs_helm
@pytest.mark.parametrize("mode", ["deployment", "rayservice"])
def test_helm_template_renders(mode: str) -> None:
    out = _helm(
        "template", "t", str(CHART), "--set", f"worker.mode={mode}", "--set", "queue.redis.enabled=true"
    )
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "Secret", "StatefulSet"} <= kinds
    assert ("RayService" in kinds) == (mode == "rayservice")
    used = set(_ENV_NAME.findall(out))
    assert not used - SETTINGS
