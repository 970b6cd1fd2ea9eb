"""Bad values stop the chart with a message that says what to fix.

values.schema.json holds every rule JSON Schema can state: `helm lint`, `helm template` and
`helm install` all refuse such values. The few it cannot state (one number above another) are
`fail`s in templates/validate.yaml: Helm 4's lint only logs those; `template` and `install` stop.
"""

from __future__ import annotations

import pytest

from tests.deploy.helm import CHART, needs_helm, run_helm

pytestmark = needs_helm


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["worker.mode=kubernetes"], "at '/worker/mode': value must be one of 'deployment', 'rayservice'"),
        (["image.tag=latest"], "at '/image/tag'"),
        (["worker.gpusPerReplica=-1"], "at '/worker/gpusPerReplica': minimum: got -1, want 0"),
        (["storage.url=minio://bucket"], "at '/storage/url'"),
        (["queue.url=http://redis:6379"], "at '/queue/url'"),
        (["queue.url=redis://:hunter2@redis:6379/0"], "at '/queue/url'"),
        (["api.replica=3"], "at '/api': additional properties 'replica' not allowed"),
        (["settings.queue_url=redis://other:6379"], "invalid propertyName 'queue_url'"),
        (["settings.Task_TTL=1"], "'Task_TTL' does not match pattern '^[a-z][a-z0-9_]*$'"),
        (["worker.shmSizeLimit=lots"], "at '/worker/shmSizeLimit'"),
        (["api.ingress.host=Video_Example"], "at '/api/ingress/host'"),
        (["worker.pdb.maxUnavailable=0"], "at '/worker/pdb/maxUnavailable'"),
        (
            ["storage.url=file:///var/lib/paddock"],
            "at '/storage/volume/existingClaim': minLength: got 0, want 1",
        ),
        (["auth.format=keysFile"], "at '/auth/existingSecret': minLength: got 0, want 1"),
        (["api.ingress.enabled=true"], "at '/api/ingress/host': minLength: got 0, want 1"),
    ],
    ids=lambda x: x[0] if isinstance(x, list) else "",
)
def test_bad_values_fail_lint_readably(sets: list[str], message: str) -> None:
    args = [a for s in sets for a in ("--set", s)]
    done = run_helm("lint", "--strict", str(CHART), *args)
    assert done.returncode != 0, f"helm lint accepted {sets}"
    assert message in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["api.hpa.minReplicas=5", "api.hpa.maxReplicas=2"],
            "api.hpa.minReplicas (5) is above api.hpa.maxReplicas (2)",
        ),
        (
            ["worker.minReplicas=3", "worker.maxReplicas=2"],
            "worker.minReplicas (3) is above worker.maxReplicas (2)",
        ),
        (
            ["worker.gpusPerReplica=1", "worker.modelsConfig.models.m.devices={cuda:0,cuda:1}"],
            "model m runs on 2 GPUs (its devices) but worker.gpusPerReplica is 1",
        ),
    ],
    ids=lambda x: x[0] if isinstance(x, list) else "",
)
def test_rules_between_values_stop_template_and_install(sets: list[str], message: str) -> None:
    args = [a for s in sets for a in ("--set", s)]
    done = run_helm("template", "t", str(CHART), *args)
    assert done.returncode != 0, f"helm template accepted {sets}"
    assert "execution error at (paddock/templates/validate.yaml" in done.stderr and message in done.stderr
