"""deploy/serve_config.yaml and build_app's options, checked by Serve's own schema; no cluster."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # before ray is imported
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from ray.serve.config import AutoscalingConfig
from ray.serve.schema import ServeDeploySchema

from model.registry import default_registry
from server.cli import main
from server.worker.autoscaling import QueueLagPolicy
from server.worker.deployment import (
    DEPLOYMENT_NAME,
    POLICY_PATH,
    build_app,
    ray_registry,
    resource_options,
)

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "serve_config.yaml"


def test_the_shipped_serve_config_is_valid_and_autoscales_from_the_queue() -> None:
    config = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    [app] = config.applications
    assert app.import_path == "server.worker.deployment:build_app"
    [deployment] = app.deployments
    assert deployment.name == DEPLOYMENT_NAME
    autoscaling = AutoscalingConfig(**deployment.autoscaling_config)
    assert autoscaling.min_replicas == 0 and autoscaling.policy.policy_function == POLICY_PATH
    policy = QueueLagPolicy(**autoscaling.policy.policy_kwargs)  # what Serve's controller builds
    assert policy.queue_url == app.args["settings"]["queue_url"]
    build_app(app.args)  # the builder accepts the file's args


def test_build_app_turns_args_into_deployment_options() -> None:
    app = build_app(
        {
            "settings": {"queue_url": "redis://127.0.0.1:6379/0", "shutdown_grace_s": 10},
            "autoscaling": {"max_replicas": 3, "upscale_delay_s": 2},
        }
    )
    options = app._bound_deployment._deployment_config
    assert options.graceful_shutdown_timeout_s > 10  # Serve must not kill the runner's drain
    assert options.autoscaling_config.max_replicas == 3
    assert options.autoscaling_config.policy.policy_kwargs["jobs_per_replica"] == 4  # max_concurrent_jobs


def test_a_replica_of_several_gpus_is_one_strict_pack_placement_group() -> None:
    assert resource_options(0, 1) == {"ray_actor_options": {"num_cpus": 1, "num_gpus": 0}}
    options = resource_options(4, 2)
    assert options["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 1}
    assert options["placement_group_bundles"] == [{"CPU": 2, "GPU": 1}] * 4
    assert options["placement_group_strategy"] == "STRICT_PACK"


def test_each_rank_sees_its_own_gpu_as_cuda_0() -> None:
    name = "happyhorse-1.0-t2v"
    devices = ("cuda:0", "cuda:1")  # as a local ParallelGroup would place them
    spec = replace(default_registry()[name], ulysses_degree=2, cfg_parallel=True, devices=devices)
    assert ray_registry({name: spec}, gpus=4)[name].devices == ("cuda:0",) * 4
    with pytest.raises(ValueError, match="needs 4 GPUs"):
        ray_registry({name: spec}, gpus=2)
    cpu = replace(spec, devices=("cpu",))
    assert ray_registry({name: cpu}, gpus=0)[name] == cpu  # CPU ranks (gloo) share the one device


def test_paddock_ray_without_a_config_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ray", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no serve config" in capsys.readouterr().out
