"""`helm lint` and `helm template` of the chart, every object checked against the Kubernetes API.

Three values files: the chart's defaults, a production-like install (RayService on GPU nodes,
external Redis and S3 from Secrets, Ingress with TLS, monitors, HPA) and a CPU-only trial. Every
rendered object is validated with kubernetes-validate (strict: unknown fields fail) for the oldest
and the newest Kubernetes the chart claims; the RayService's pod templates are validated as pod
templates, since no schema for the CRD itself ships offline.
"""

from __future__ import annotations

import itertools
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.helm import (
    CHART,
    VALUES_FILES,
    Pod,
    chart_kube_versions,
    find,
    needs_helm,
    pods,
    render,
    run_helm,
    selects,
    value_args,
)

pytestmark = needs_helm

# Custom resources: their operators' CRDs are not part of kubernetes-validate.
CRD_KINDS = {"RayService", "ServiceMonitor", "PodMonitor"}
OLDEST, NEWEST = chart_kube_versions()


@pytest.mark.parametrize("values", VALUES_FILES)
def test_lint_strict(values: str) -> None:
    done = run_helm("lint", "--strict", str(CHART), *value_args(values))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout, done.stdout


def _validate(obj: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']} at {path}: {exc.message}") from None


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("values", VALUES_FILES)
def test_every_object_is_valid_kubernetes(values: str, version: str) -> None:
    docs = render(values, kube_version=version)
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            _validate(doc, version)
    for pod in pods(docs):
        if pod.owner.startswith("RayService/"):
            name = pod.owner.split("/")[1].replace(":", "-")
            _validate(
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": name},
                    "template": pod.template,
                },
                version,
            )


def test_kube_versions_outside_the_claim_are_refused() -> None:
    major, minor, _ = OLDEST.split(".")
    done = run_helm("template", "t", str(CHART), "--kube-version", f"{major}.{int(minor) - 1}.0")
    assert done.returncode != 0 and "kubeVersion" in done.stderr, done.stderr


def _port_names(pod: Pod) -> set[str]:
    return {p["name"] for c in pod.spec["containers"] for p in c.get("ports", [])}


@pytest.mark.parametrize("values", VALUES_FILES)
def test_services_reach_named_ports(values: str) -> None:
    docs = render(values)
    for svc in find(docs, "Service"):
        chosen = [p for p in pods(docs) if selects({"matchLabels": svc["spec"]["selector"]}, p.labels)]
        assert chosen, f"Service {svc['metadata']['name']} selects no pod"
        for port, pod in itertools.product(svc["spec"]["ports"], chosen):
            assert port["targetPort"] in _port_names(pod), f"{svc['metadata']['name']}: {pod.owner}"


@pytest.mark.parametrize("values", VALUES_FILES)
def test_budgets_autoscalers_and_ingress_point_at_the_release(values: str) -> None:
    docs = render(values)
    for pdb in find(docs, "PodDisruptionBudget"):
        assert any(selects(pdb["spec"]["selector"], p.labels) for p in pods(docs)), pdb["metadata"]["name"]
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        (deployment,) = [d for d in find(docs, target["kind"]) if d["metadata"]["name"] == target["name"]]
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    services = {d["metadata"]["name"]: d for d in find(docs, "Service")}
    for ingress in find(docs, "Ingress"):
        for path in (p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]):
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}


@pytest.mark.parametrize("values", VALUES_FILES)
def test_monitors_scrape_metrics_ports(values: str) -> None:
    docs = render(values, ("metrics.serviceMonitor.enabled=true",))
    services = find(docs, "Service")
    for monitor in find(docs, "ServiceMonitor"):
        chosen = [s for s in services if selects(monitor["spec"]["selector"], s["metadata"]["labels"])]
        assert chosen, monitor["metadata"]["name"]
        for endpoint, svc in itertools.product(monitor["spec"]["endpoints"], chosen):
            assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    for monitor in find(docs, "PodMonitor"):
        chosen = [p for p in pods(docs) if selects(monitor["spec"]["selector"], p.labels)]
        assert {p.component for p in chosen} == {"ray-head", "ray-worker"}
        for endpoint, pod in itertools.product(monitor["spec"]["podMetricsEndpoints"], chosen):
            assert endpoint["port"] in _port_names(pod), pod.owner
    scraped = {m["kind"] for m in docs if m["kind"].endswith("Monitor")}
    worker_mode = "rayservice" if find(docs, "RayService") else "deployment"
    assert scraped == (
        {"ServiceMonitor", "PodMonitor"} if worker_mode == "rayservice" else {"ServiceMonitor"}
    )
