"""`helm test`: the hook Job's own script, run against a real `paddock serve` on Redis with the key
the chart generated, its environment resolved from the rendered Secret as the kubelet would."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helm import Manifests, find, needs_helm, one, render
from tests.deploy.live_stack import LiveStack

pytestmark = [
    needs_helm,
    pytest.mark.skipif(shutil.which("curl") is None, reason="no curl (`make helm-tools`)"),
]


def _hook(docs: Manifests) -> dict[str, Any]:
    job = one(docs, "Job", "-test-submit")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def _resolved_env(container: dict[str, Any], docs: Manifests) -> dict[str, str]:
    secrets = {s["metadata"]["name"]: s["data"] for s in find(docs, "Secret")}
    env = {}
    for entry in container["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        env[entry["name"]] = (
            base64.b64decode(secrets[ref["name"]][ref["key"]]).decode() if ref else entry["value"]
        )
    return env


def _run_hook(container: dict[str, Any], env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*container["command"], *container["args"]],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_hook_targets_the_api_service_with_the_generated_key() -> None:
    docs = render("default", ("queue.redis.enabled=true",))
    env = _resolved_env(_hook(docs), docs)
    service = one(docs, "Service", "-api")
    assert env["BASE"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/api/v1"
    api = one(docs, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    assert env["PADDOCK_API_KEYS"] == _resolved_env(api, docs)["PADDOCK_API_KEYS"]
    assert env["PADDOCK_API_KEYS"].startswith("sk-paddock-")


def test_hook_script_passes_on_a_live_server_and_fails_on_a_bad_key(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    docs = render("default", ("queue.redis.enabled=true",))
    container = _hook(docs)
    server = live_stack.server
    env = {**_resolved_env(container, docs), "BASE": server.api_url, "TIMEOUT": "150"}
    done = _run_hook(container, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr + server.log()[-3000:]
    assert '"task_status":"SUCCEEDED"' in done.stdout.replace(" ", "")

    refused = _run_hook(container, {**env, "PADDOCK_API_KEYS": "sk-not-a-key"}, tmp_path)
    assert refused.returncode != 0
    assert "request failed:" in refused.stderr and "InvalidApiKey" in refused.stderr
