"""`paddock storage init`: the bucket and its lifecycle rules (on moto's HTTP server), the folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.cli import main
from server.config import Settings
from server.storage.admin import expiry_days, lifecycle_rules, storage_init
from tests.s3_server import aws_env, moto_s3, s3_client


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with aws_env(), moto_s3() as url:
        yield url


def _rules(endpoint: str, bucket: str) -> dict[str, dict[str, Any]]:
    config = s3_client(endpoint).get_bucket_lifecycle_configuration(Bucket=bucket)
    return {rule["ID"]: rule for rule in config["Rules"]}


def test_expiry_days_round_up_to_whole_days() -> None:
    assert [expiry_days(s) for s in (1, 86_400, 86_401, 172_800, 0)] == [1, 1, 2, 2, 1]


def test_init_creates_the_bucket_and_the_lifecycle_rules(endpoint: str) -> None:
    settings = Settings(
        storage_url="s3://paddock-admin/pfx",
        s3_endpoint_url=endpoint,
        task_ttl_s=90_000,  # a bit over a day: the rule must wait 2 days
        upload_ttl_s=172_800,
    )
    printed: list[str] = []
    lines = storage_init(settings, create_bucket=True, out=printed.append)
    assert lines == printed
    assert lines[0] == "storage: created bucket s3://paddock-admin (us-east-1)"
    s3_client(endpoint).head_bucket(Bucket="paddock-admin")
    rules = _rules(endpoint, "paddock-admin")
    assert set(rules) == {
        "paddock-pfx/results",
        "paddock-pfx/inputs",
        "paddock-pfx/uploads",
        "paddock-pfx/abort-multipart",
    }
    expected = {"results": ("pfx/results/", 2), "inputs": ("pfx/inputs/", 2), "uploads": ("pfx/uploads/", 2)}
    for folder, (prefix, days) in expected.items():
        rule = rules[f"paddock-pfx/{folder}"]
        assert rule["Filter"]["Prefix"] == prefix and rule["Status"] == "Enabled"
        assert rule["Expiration"]["Days"] == days
    abort = rules["paddock-pfx/abort-multipart"]
    assert abort["Filter"]["Prefix"] == "pfx/"
    assert abort["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert any("pfx/uploads/* expire after 2 day(s)" in line for line in lines)


def test_init_again_replaces_its_rules_and_keeps_others(endpoint: str) -> None:
    client = s3_client(endpoint)
    client.create_bucket(Bucket="paddock-shared")
    foreign = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    client.put_bucket_lifecycle_configuration(
        Bucket="paddock-shared", LifecycleConfiguration={"Rules": [foreign]}
    )
    settings = Settings(storage_url="s3://paddock-shared", s3_endpoint_url=endpoint)
    first = storage_init(settings, create_bucket=True, out=lambda line: None)
    assert first[0] == "storage: bucket s3://paddock-shared already exists"
    storage_init(
        settings.model_copy(update={"task_ttl_s": 3 * 86_400}), create_bucket=False, out=lambda line: None
    )
    rules = _rules(endpoint, "paddock-shared")
    assert set(rules) == {
        "logs",
        "paddock-results",
        "paddock-inputs",
        "paddock-uploads",
        "paddock-abort-multipart",
    }
    assert rules["paddock-results"]["Expiration"]["Days"] == 3  # replaced, not duplicated
    assert rules["paddock-results"]["Filter"]["Prefix"] == "results/"
    assert rules["paddock-uploads"]["Expiration"]["Days"] == 2
    assert rules["logs"]["Expiration"]["Days"] == 30


def test_init_without_create_needs_an_existing_bucket(endpoint: str) -> None:
    from botocore.exceptions import ClientError

    settings = Settings(storage_url="s3://paddock-missing/p", s3_endpoint_url=endpoint)
    with pytest.raises(ClientError):
        storage_init(settings, create_bucket=False, out=lambda line: None)


def test_lifecycle_rules_for_an_empty_prefix() -> None:
    rules = lifecycle_rules("", task_ttl_s=86_400, upload_ttl_s=172_800)
    assert [(r["ID"], r["Filter"]["Prefix"]) for r in rules] == [
        ("paddock-results", "results/"),
        ("paddock-inputs", "inputs/"),
        ("paddock-uploads", "uploads/"),
        ("paddock-abort-multipart", ""),
    ]


def test_init_for_a_local_folder(tmp_path: Path) -> None:
    lines = storage_init(
        Settings(storage_url=f"file://{tmp_path}/store"), create_bucket=True, out=lambda line: None
    )
    assert (tmp_path / "store").is_dir()
    assert "sweeps" in lines[1]
    with pytest.raises(ValueError):
        storage_init(Settings(storage_url="ftp://x"), create_bucket=False, out=lambda line: None)


def test_cli_storage_init(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PADDOCK_STORAGE_URL", "s3://paddock-cli/deploy")
    monkeypatch.setenv("PADDOCK_S3_ENDPOINT_URL", endpoint)
    monkeypatch.delenv("PADDOCK_CONFIG", raising=False)
    assert os.environ["AWS_ACCESS_KEY_ID"] == "test"
    assert main(["storage", "init", "--create-bucket"]) == 0
    out = capsys.readouterr().out
    assert "created bucket s3://paddock-cli" in out
    assert "s3://paddock-cli/deploy/results/* expire after 1 day(s)" in out
    assert "paddock-deploy/uploads" in _rules(endpoint, "paddock-cli")
