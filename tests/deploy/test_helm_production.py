"""What production needs from the chart, read off `helm template` output for each values file:
probes, resources and GPUs from values, disruption budgets, a shutdown grace the pods honour,
/dev/shm in memory, scheduling per pod group, no root, secrets only from Secrets, a durable Redis,
and a RayService whose serve config names what the values say.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.parallel import world_size
from model.registry import load_registry
from server.config import Settings
from tests.deploy.helm import (
    ROOT,
    VALUES_FILES,
    Manifests,
    Pod,
    env_of,
    find,
    needs_helm,
    one,
    pods,
    pods_of,
    render,
    selects,
    serve_config,
    values_of,
)
from tests.deploy.redis_config import redis_bytes, redis_config_with

pytestmark = needs_helm

WORKERS = ("worker", "ray-worker")  # the GPU pods of each worker mode
SECRET_ENV = {"PADDOCK_API_KEYS", "PADDOCK_SIGNING_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def gpu_pods(docs: Manifests) -> list[Pod]:
    found = [p for p in pods(docs) if p.component in WORKERS]
    assert found, "no GPU worker pod"
    return found


@pytest.mark.parametrize("values", VALUES_FILES)
def test_api_probes_and_resources(values: str) -> None:
    (api,) = pods_of(render(values), "api")
    container = api.container("api")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert ports["http"] == int(env_of(container)["PADDOCK_PORT"]["value"])
    assert container["resources"] == values_of(values)["api"]["resources"]
    assert container["args"] == ["api"]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_worker_resources_gpus_and_shm(values: str) -> None:
    worker = values_of(values)["worker"]
    for pod in gpu_pods(render(values)):
        (container,) = pod.spec["containers"]
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert requests == worker["resources"]["requests"], pod.owner
        gpus = worker["gpusPerReplica"]
        assert limits == {**worker["resources"]["limits"], **({"nvidia.com/gpu": gpus} if gpus else {})}
        (shm,) = [v for v in pod.spec["volumes"] if v["name"] == "dshm"]
        assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": worker["shmSizeLimit"]}
        assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_termination_grace_covers_the_shutdown_grace(values: str) -> None:
    """SIGTERM: stop claiming, let jobs run PADDOCK_SHUTDOWN_GRACE_S, hand the rest back, close:
    the kubelet must not SIGKILL before that (and Serve's timeout is sized from the same grace)."""
    docs = render(values)
    grace = values_of(values)["worker"]["shutdownGraceSeconds"]
    for pod in gpu_pods(docs):
        env = env_of(pod.spec["containers"][0])
        assert int(env["PADDOCK_SHUTDOWN_GRACE_S"]["value"]) == grace
        assert pod.spec["terminationGracePeriodSeconds"] == grace + 30, pod.owner
    if find(docs, "RayService"):
        (app,) = serve_config(docs)["applications"]
        assert app["args"]["settings"]["shutdown_grace_s"] == grace


@pytest.mark.parametrize("values", VALUES_FILES)
def test_disruption_budgets_cover_api_and_workers(values: str) -> None:
    docs = render(values)
    budgets = find(docs, "PodDisruptionBudget")
    for pod in [*pods_of(docs, "api"), *gpu_pods(docs)]:
        (pdb,) = [b for b in budgets if selects(b["spec"]["selector"], pod.labels)]
        assert pdb["spec"]["maxUnavailable"] == 1, pod.owner


@pytest.mark.parametrize("values", VALUES_FILES)
def test_scheduling_per_pod_group(values: str) -> None:
    v = values_of(values)
    docs = render(values)
    expected = {
        "api": (v["api"]["nodeSelector"], v["api"]["tolerations"]),
        "worker": (v["worker"]["nodeSelector"], v["worker"]["tolerations"]),
        "ray-worker": (v["worker"]["nodeSelector"], v["worker"]["tolerations"]),
        "ray-head": (v["worker"]["ray"]["headNodeSelector"], v["worker"]["ray"]["headTolerations"]),
        "redis": (v["queue"]["redis"]["nodeSelector"], v["queue"]["redis"]["tolerations"]),
    }
    for pod in pods(docs):
        if pod.component in expected:
            selector, tolerations = expected[pod.component]
            assert pod.spec.get("nodeSelector", {}) == selector, pod.owner
            assert pod.spec.get("tolerations", []) == tolerations, pod.owner


def test_production_puts_gpu_pods_on_gpu_nodes_only() -> None:
    docs = render("production")
    for pod in pods(docs):
        gpu_node = "nvidia.com/gpu.product" in pod.spec.get("nodeSelector", {})
        assert gpu_node == (pod.component == "ray-worker"), pod.owner


@pytest.mark.parametrize("values", VALUES_FILES)
def test_no_container_runs_as_root(values: str) -> None:
    for pod in pods(render(values)):
        security = pod.spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, pod.owner
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, pod.owner
        for container in pod.containers():
            own = container["securityContext"]
            assert own["allowPrivilegeEscalation"] is False and own["capabilities"]["drop"] == ["ALL"]
            assert own.get("runAsUser", security["runAsUser"]) != 0 and not own.get("privileged")


def _secret_data(docs: Manifests) -> dict[str, dict[str, str]]:
    return {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
        for s in find(docs, "Secret")
    }


@pytest.mark.parametrize("values", VALUES_FILES)
def test_secrets_come_only_from_secrets(values: str) -> None:
    v = values_of(values)
    docs = render(values)
    made = _secret_data(docs)
    existing = {v["auth"]["existingSecret"], v["queue"]["existingSecret"], v["storage"]["existingSecret"]} - {
        ""
    }
    secret_texts = {text for data in made.values() for text in data.values()}
    for pod in pods(docs):
        for container in pod.containers():
            for name, entry in env_of(container).items():
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    assert ref["name"] in existing or ref["key"] in made.get(ref["name"], {}), (
                        pod.owner,
                        name,
                    )
                    continue
                value = str(entry.get("value", ""))
                assert name not in SECRET_ENV or value.startswith("/etc/paddock/"), (pod.owner, name)
                assert "@" not in value and value not in secret_texts, (pod.owner, name)
            for source in container.get("envFrom", []):
                assert set(source) == {"secretRef"} and source["secretRef"]["name"] in existing
    for config_map in find(docs, "ConfigMap"):
        assert not any(text in str(config_map["data"]) for text in secret_texts)


def test_production_reads_every_credential_from_its_existing_secret() -> None:
    docs = render("production")
    assert not find(docs, "Secret"), "the operator's Secrets hold everything"
    for pod in [*pods_of(docs, "api"), *gpu_pods(docs)]:
        env = env_of(pod.spec["containers"][0])
        refs = {
            name: env[name]["valueFrom"]["secretKeyRef"]["name"] for name in env if "valueFrom" in env[name]
        }
        assert refs == {
            "PADDOCK_QUEUE_URL": "paddock-redis",
            "PADDOCK_SIGNING_SECRET": "paddock-auth",
            "PADDOCK_API_KEYS": "paddock-auth",
        }
        assert pod.spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "paddock-s3"}}]
        assert env["PADDOCK_STORAGE_URL"]["value"].startswith("s3://")


@pytest.mark.parametrize("values", ["default", "cpu-trial"])
def test_chart_made_secret_is_kept_across_uninstall(values: str) -> None:
    (secret,) = find(render(values), "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert set(secret["data"]) == {"PADDOCK_API_KEYS", "PADDOCK_SIGNING_SECRET"}


def test_production_ingress_tls_and_public_url() -> None:
    v = values_of("production")["api"]["ingress"]
    docs = render("production")
    ingress = one(docs, "Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": [v["host"]], "secretName": v["tlsSecretName"]}]
    assert ingress["spec"]["ingressClassName"] == v["className"]
    assert ingress["metadata"]["annotations"] == v["annotations"]
    for pod in [*pods_of(docs, "api"), *gpu_pods(docs)]:
        assert env_of(pod.spec["containers"][0])["PADDOCK_PUBLIC_URL"]["value"] == f"https://{v['host']}"
    hpa = one(docs, "HorizontalPodAutoscaler")
    hpa_values = values_of("production")["api"]["hpa"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        hpa_values["minReplicas"],
        hpa_values["maxReplicas"],
    )


def test_serve_config_follows_values() -> None:
    """The RayService's serveConfigV2: the app, GPUs per replica, autoscaling bounds, and the
    models (the registry file it names, loaded from the ConfigMap the GPU pods mount)."""
    v = values_of("production")["worker"]
    docs = render("production")
    (app,) = serve_config(docs)["applications"]
    assert app["import_path"] == "server.worker.deployment:build_app"
    args = app["args"]
    assert args["gpus_per_replica"] == v["gpusPerReplica"]
    assert args["autoscaling"] == {
        "min_replicas": v["minReplicas"],
        "max_replicas": v["maxReplicas"],
        "jobs_per_replica": v["maxConcurrentJobs"],
    }
    assert args["settings"]["max_concurrent_jobs"] == v["maxConcurrentJobs"]
    (group,) = one(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == (v["minReplicas"], v["maxReplicas"])
    (worker,) = pods_of(docs, "ray-worker")
    container = worker.container("ray-worker")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == args["gpus_per_replica"]
    registry_path = Path(args["settings"]["models"])
    assert env_of(container)["PADDOCK_MODELS"]["value"] == str(registry_path)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(registry_path.parent)]
    (volume,) = [vol for vol in worker.spec["volumes"] if vol["name"] == mount["name"]]
    (config_map,) = [
        c for c in find(docs, "ConfigMap") if c["metadata"]["name"] == volume["configMap"]["name"]
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / registry_path.name
        path.write_text(config_map["data"][registry_path.name])
        registry = load_registry(path)
    assert set(registry) == set(v["modelsConfig"]["models"])
    assert {world_size(spec) for spec in registry.values()} <= {1, args["gpus_per_replica"]}


@pytest.mark.parametrize(
    ("values", "sets"),
    [("default", ("queue.redis.enabled=true",)), ("cpu-trial", ())],
    ids=["default", "cpu-trial"],
)
def test_in_cluster_redis_is_durable(values: str, sets: tuple[str, ...]) -> None:
    """AOF on and noeviction, checked by a real redis-server started with the StatefulSet's args."""
    docs = render(values, sets)
    (pod,) = pods_of(docs, "redis")
    args = pod.container("redis")["args"]
    config = redis_config_with(args)
    assert config["appendonly"] == "yes" and config["maxmemory-policy"] == "noeviction"
    assert config["maxmemory"] == str(redis_bytes(values_of(values)["queue"]["redis"]["maxmemory"]))
    statefulset = one(docs, "StatefulSet", "-redis")
    persistent = values_of(values)["queue"]["redis"]["persistence"]["enabled"]
    assert bool(statefulset["spec"].get("volumeClaimTemplates")) == persistent


def test_production_uses_no_in_cluster_redis() -> None:
    assert not pods_of(render("production"), "redis")


def test_models_config_loads_for_every_values_file() -> None:
    for values in VALUES_FILES:
        models: dict[str, Any] = values_of(values)["worker"]["modelsConfig"]
        if not models:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "models.yaml"
            path.write_text(yaml.safe_dump(models))
            registry = load_registry(path)
        assert values_of(values)["tests"]["model"] in registry, values


def test_serve_config_args_are_build_apps() -> None:
    """build_app reads these args (server/worker/deployment.py); a `deployments:` override would
    replace its queue-lag autoscaling policy and placement group, so the chart writes none."""
    source = (ROOT / "server" / "worker" / "deployment.py").read_text()
    (app,) = serve_config(render("production"))["applications"]
    assert "deployments" not in app
    assert app["import_path"].split(":")[1] == "build_app" and "\ndef build_app(" in source
    for key in app["args"]:
        assert f'args.get("{key}"' in source or f'"{key}" in args' in source, key
    assert set(app["args"]["settings"]) <= set(Settings.model_fields)
    for key in app["args"]["autoscaling"]:
        assert f'"{key}"' in source, key
