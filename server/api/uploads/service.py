"""Temporary uploads: the DashScope SDK's local-file flow (API.md §5), served by paddock itself.

1. `GET /api/v1/uploads?action=getPolicy&model=M` (with `Authorization`) returns a policy like
   OSS's POST policy: a base64 JSON document (expiry, key prefix `upload_dir`, size range) and
   our HMAC `signature` of it. `upload_host` points back at this server.
2. The SDK POSTs a multipart form to `upload_host` (`/api/v1/uploads/oss`) with no
   `Authorization`: the signature is the credential. The file is stored under `uploads/<key>`
   and lives `PADDOCK_UPLOAD_TTL_S` (48 h).
3. The SDK sends `oss://<key>` as a media URL; `UploadService.resolve` turns it back into bytes,
   only for the tenant the policy was issued to: `upload_dir` starts with an HMAC digest of the
   tenant id, which another tenant can neither compute nor match.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from server.errors import AccessDenied, DashScopeError, InvalidParameter, InvalidURL
from server.storage.base import ObjectNotFound
from server.storage.local import validate_key

if TYPE_CHECKING:
    from pathlib import Path

    from server.config import Settings
    from server.keys import Tenant
    from server.signing import Signer
    from server.storage.base import ObjectStore

ACCESS_KEY_ID = "paddock"
OBJECT_ACL = "private"
FORBID_OVERWRITE = "true"
POLICY_TTL_S = 300
UPLOAD_ROOT = "dashscope-instant"
STORE_PREFIX = "uploads/"
OSS_SCHEME = "oss://"
POLICY_PURPOSE = "upload-policy"
TENANT_PURPOSE = "upload-tenant"
_TENANT_DIGEST_CHARS = 22
_MB = 1024 * 1024
# Room for the form's other fields and part headers beside the file.
FORM_SLACK_BYTES = 64 * 1024
UPLOAD_PATH = "/api/v1/uploads/oss"  # the policies' upload_host points here (routes.py serves it)
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]{0,63}/[\w.+-]{1,127}$")
_REQUIRED_FIELDS = ("OSSAccessKeyId", "Signature", "policy", "key")


@dataclass(frozen=True)
class UploadPolicy:
    """The parts of a decoded policy that `accept` enforces."""

    upload_dir: str
    expires_at: float
    max_bytes: int
    object_acl: str | None
    forbid_overwrite: str | None


class UploadService:
    """Issues upload policies, accepts the uploads they allow, resolves `oss://` URLs."""

    def __init__(
        self,
        store: ObjectStore,
        signer: Signer,
        settings: Settings,
        *,
        policy_ttl_s: int = POLICY_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.signer = signer
        self.settings = settings
        self.policy_ttl_s = policy_ttl_s
        self._clock = clock

    def now(self) -> float:
        """The service's clock (epoch seconds)."""
        return self._clock()

    @property
    def max_bytes(self) -> int:
        """The largest file a new policy allows (`PADDOCK_MAX_UPLOAD_MB`)."""
        return self.settings.max_upload_mb * _MB

    def tenant_prefix(self, tenant: Tenant) -> str:
        """`dashscope-instant/<digest>/`: the key prefix of every upload of `tenant`."""
        digest = self.signer.sign(TENANT_PURPOSE, tenant.id)[:_TENANT_DIGEST_CHARS]
        return f"{UPLOAD_ROOT}/{digest}/"

    # -- 1. the policy ---------------------------------------------------------------------------

    def issue_policy(self, tenant: Tenant, model: str) -> dict[str, Any]:
        """The `data` object of a getPolicy response, as the SDK reads it."""
        now = self._clock()
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        upload_dir = f"{self.tenant_prefix(tenant)}{day}/{uuid.uuid4().hex}"
        expires_at = now + self.policy_ttl_s
        document = {
            "expiration": _iso(expires_at),
            "conditions": [
                ["starts-with", "$key", upload_dir + "/"],
                ["content-length-range", 0, self.max_bytes],
                {"x-oss-object-acl": OBJECT_ACL},
                {"x-oss-forbid-overwrite": FORBID_OVERWRITE},
            ],
        }
        policy = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode("ascii")
        return {
            "policy": policy,
            "signature": self.signer.sign(POLICY_PURPOSE, policy),
            "upload_dir": upload_dir,
            "upload_host": f"{self.settings.base_url}{UPLOAD_PATH}",
            "expire_in_seconds": self.policy_ttl_s,
            "max_file_size_mb": self.settings.max_upload_mb,
            "capacity_limit_mb": self.settings.max_upload_mb * 100,
            "oss_access_key_id": ACCESS_KEY_ID,
            "x_oss_object_acl": OBJECT_ACL,
            "x_oss_forbid_overwrite": FORBID_OVERWRITE,
        }

    # -- 2. the upload ---------------------------------------------------------------------------

    def accept(self, fields: Mapping[str, str], path: Path, size: int, *, now: float) -> str:
        """Store an upload (its form's `fields` and the file at `path`, `size` bytes) if the form is
        valid at `now`, when the request arrived; returns the form's key."""
        policy = self.verify_form(fields, now)
        if size > policy.max_bytes:  # the streaming reader already cut it off there
            raise InvalidParameter(f"The file is too large: at most {policy.max_bytes} bytes allowed.")
        key = fields["key"]
        stored = STORE_PREFIX + key
        if policy.forbid_overwrite == "true" and self.store.exists(stored):
            raise DashScopeError(f"The object {key} already exists.", code="FileAlreadyExists", status=409)
        content_type = fields.get("x-oss-content-type", "")
        if not _CONTENT_TYPE.match(content_type):
            content_type = "application/octet-stream"
        self.store.put_file(stored, path, content_type, now + self.settings.upload_ttl_s)
        return key

    def verify_form(self, fields: Mapping[str, str], now: float) -> UploadPolicy:
        """The form's policy when its signature, expiry, key and options are all acceptable."""
        missing = [name for name in _REQUIRED_FIELDS if not fields.get(name)]
        if missing:
            raise InvalidParameter(f"The upload form is missing the field(s): {', '.join(missing)}.")
        if fields["OSSAccessKeyId"] != ACCESS_KEY_ID:
            raise AccessDenied("The OSSAccessKeyId of the upload form is not one this server issued.")
        if not self.signer.verify(fields["Signature"], POLICY_PURPOSE, fields["policy"]):
            raise AccessDenied("The upload signature does not match the policy.")
        policy = _decode_policy(fields["policy"])
        if now >= policy.expires_at:
            raise AccessDenied("The upload policy has expired; request a new one with getPolicy.")
        _check_key(fields["key"], policy.upload_dir)
        _check_option(fields, "x-oss-object-acl", policy.object_acl)
        _check_option(fields, "x-oss-forbid-overwrite", policy.forbid_overwrite)
        return policy

    # -- 3. oss:// URLs --------------------------------------------------------------------------

    def resolve(self, oss_url: str, tenant: Tenant, *, max_bytes: int) -> bytes:
        """The bytes behind `oss://<key>`, if `tenant` uploaded them here and they are still kept."""
        gone = InvalidURL(f"The file {oss_url} was not uploaded to this server or has expired.")
        if not oss_url.startswith(OSS_SCHEME):
            raise InvalidURL(f"Not an oss:// URL: {oss_url}")
        key = oss_url[len(OSS_SCHEME) :]
        if not key.startswith(self.tenant_prefix(tenant)):
            raise gone
        try:
            data = self.store.get_bytes(STORE_PREFIX + validate_key(key))
        except (ObjectNotFound, ValueError) as exc:
            raise gone from exc
        if len(data) > max_bytes:
            raise InvalidParameter(f"The file {oss_url} is larger than {max_bytes} bytes.")
        return data


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _decode_policy(policy: str) -> UploadPolicy:
    """Parse a policy this server signed (so a parse error means a bug or an old format)."""
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
        expires_at = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ")
        values = _condition_values(document["conditions"])
        return UploadPolicy(
            upload_dir=str(values["upload_dir"]),
            expires_at=expires_at.replace(tzinfo=UTC).timestamp(),
            max_bytes=int(values["max_bytes"]),
            object_acl=values.get("x-oss-object-acl"),
            forbid_overwrite=values.get("x-oss-forbid-overwrite"),
        )
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError) as exc:
        raise InvalidParameter("The upload policy is malformed.") from exc


def _condition_values(conditions: list[Any]) -> dict[str, Any]:
    """`upload_dir`, `max_bytes` and the exact-match fields of a policy's conditions."""
    values: dict[str, Any] = {}
    for condition in conditions:
        if isinstance(condition, dict):
            values.update({str(k): str(v) for k, v in condition.items()})
        elif condition[0] == "starts-with" and condition[1] == "$key":
            values["upload_dir"] = str(condition[2]).rstrip("/")
        elif condition[0] == "content-length-range":
            values["max_bytes"] = int(condition[2])
    return values


def _check_key(key: str, upload_dir: str) -> None:
    if not key.startswith(upload_dir + "/") or ".." in key:
        raise AccessDenied(f"The key {key!r} is outside the policy's upload_dir {upload_dir!r}.")
    try:
        validate_key(STORE_PREFIX + key)
    except ValueError as exc:
        raise InvalidParameter(f"The key {key!r} is not a valid object name.") from exc


def _check_option(fields: Mapping[str, str], name: str, expected: str | None) -> None:
    value = fields.get(name)
    if value is not None and expected is not None and value != expected:
        raise InvalidParameter(f"The form field {name} must be {expected!r}, as in the policy.")
