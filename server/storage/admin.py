"""`paddock storage init`: prepare the object store named by `PADDOCK_STORAGE_URL` once.

- `s3://bucket/prefix`: optionally create the bucket, then install lifecycle rules that delete
  results and inputs after ceil(task_ttl_s / 1 day) days and uploads after
  ceil(upload_ttl_s / 1 day) days, and abort multipart uploads left unfinished for a day. The
  store already treats an object past its expiry as missing; the rules reclaim the space (S3
  expires objects at day granularity). Other rules already on the bucket are kept: only rules
  with this prefix's IDs are replaced, so several deployments can share a bucket.
- `file://folder`: create the folder. The facade sweeps expired objects itself (every 300 s), so
  there is nothing else to set up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from server.storage.s3 import client_from_settings, is_missing, parse_s3_url

if TYPE_CHECKING:
    from server.config import Settings

DAY_S = 86_400
RULE_ID_PREFIX = "paddock-"


def storage_init(settings: Settings, *, create_bucket: bool, out: Callable[[str], None] = print) -> list[str]:
    """Prepare the store of `settings.storage_url`; returns the lines it printed through `out`."""
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    scheme, sep, rest = settings.storage_url.partition("://")
    if sep and scheme.lower() == "file":
        _init_local(rest, say)
    elif sep and scheme.lower() == "s3":
        _init_s3(settings, create_bucket=create_bucket, say=say)
    else:
        raise ValueError(f"unsupported storage URL {settings.storage_url!r} (expected file:// or s3://)")
    return lines


def _init_local(rest: str, say: Callable[[str], None]) -> None:
    if not rest:
        raise ValueError("file:// storage needs a folder, e.g. file://./paddock-data")
    root = Path(rest).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    say(f"storage: local folder {root} is ready")
    say("storage: the local store deletes expired objects itself (the facade sweeps every 300 s)")


def expiry_days(ttl_s: int) -> int:
    """Whole days a lifecycle rule must wait so an object outlives `ttl_s` (at least 1)."""
    return max(1, math.ceil(ttl_s / DAY_S))


def lifecycle_rules(prefix: str, *, task_ttl_s: int, upload_ttl_s: int) -> list[dict[str, Any]]:
    """The rules for one deployment: results/ and inputs/ (task TTL), uploads/ (upload TTL)."""
    task_days, upload_days = expiry_days(task_ttl_s), expiry_days(upload_ttl_s)
    rules: list[dict[str, Any]] = [
        _expire_rule(prefix, "results/", task_days),
        _expire_rule(prefix, "inputs/", task_days),
        _expire_rule(prefix, "uploads/", upload_days),
    ]
    # A multipart upload that died halfway leaves invisible parts that are billed until aborted.
    rules.append(
        {
            "ID": f"{RULE_ID_PREFIX}{prefix}abort-multipart",
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    )
    return rules


def _expire_rule(prefix: str, folder: str, days: int) -> dict[str, Any]:
    return {
        "ID": f"{RULE_ID_PREFIX}{prefix}{folder.rstrip('/')}",
        "Filter": {"Prefix": prefix + folder},
        "Status": "Enabled",
        "Expiration": {"Days": days},
    }


def _init_s3(settings: Settings, *, create_bucket: bool, say: Callable[[str], None]) -> None:
    bucket, prefix = parse_s3_url(settings.storage_url)
    client = client_from_settings(settings)
    if create_bucket:
        say(_create_bucket(client, bucket))
    rules = lifecycle_rules(prefix, task_ttl_s=settings.task_ttl_s, upload_ttl_s=settings.upload_ttl_s)
    kept = _other_rules(client, bucket, {rule["ID"] for rule in rules})
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": kept + rules})
    for rule in rules:
        action = (
            f"expire after {rule['Expiration']['Days']} day(s)"
            if "Expiration" in rule
            else "abort unfinished multipart uploads after 1 day"
        )
        say(f"storage: lifecycle rule {rule['ID']}: s3://{bucket}/{rule['Filter']['Prefix']}* {action}")
    if kept:
        say(f"storage: kept {len(kept)} other lifecycle rule(s) on s3://{bucket}")


def _create_bucket(client: Any, bucket: str) -> str:
    # HEAD first: us-east-1 answers CreateBucket on a bucket you own with a plain 200.
    try:
        client.head_bucket(Bucket=bucket)
        return f"storage: bucket s3://{bucket} already exists"
    except ClientError as exc:
        if not is_missing(exc):  # 403: the name belongs to someone else
            raise
    region = client.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    client.create_bucket(**kwargs)
    return f"storage: created bucket s3://{bucket} ({region})"


def _other_rules(client: Any, bucket: str, replaced: set[str]) -> list[dict[str, Any]]:
    """The bucket's current lifecycle rules, minus those about to be replaced."""
    try:
        current = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise
    return [rule for rule in current if rule.get("ID") not in replaced]
