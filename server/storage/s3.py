"""`s3://bucket/prefix` object store: AWS S3 or any S3-compatible store, through boto3.

Owns the `ObjectStore` implementation for S3, the parsing of `s3://` URLs and the construction of
the boto3 client from settings (shared with `server.storage.admin`).

- Keys are the callers' deterministic keys (`results/{task}/{attempt}.mp4`, `inputs/...`,
  `uploads/...`) under the URL's prefix: `s3://media/paddock` stores `paddock/results/...`.
- Uploads go through boto3's managed transfer (`TransferConfig`): one PUT below the multipart
  threshold (16 MiB), a multipart upload above it. The client retries throttling and transient
  errors with backoff (`botocore` "standard" retry mode).
- Every object carries its expiry as user metadata (`x-amz-meta-paddock-expires-at`).
  `get_bytes`/`exists` treat an object past it as missing at once, because S3 lifecycle rules
  (set by `paddock storage init`) delete objects only at day granularity.
- `url()` is a presigned GET that lives until `expires_at` (at most 7 days, S3's SigV4 limit).
  Presigned URLs stop working early if the credentials that signed them expire (STS or instance
  role credentials): use long-lived credentials or a CDN. With `PADDOCK_PUBLIC_BASE_URL` set,
  `url()` is `{public_base_url}/{prefix}{key}` instead, unsigned: the CDN in front of the bucket
  must enforce access (signed URLs or cookies) and expiry itself.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from server.storage.base import ObjectNotFound
from server.storage.local import validate_key

if TYPE_CHECKING:
    from server.config import Settings

MIB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 16 * MIB
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days
MIN_PRESIGN_S = 1
EXPIRES_META = "paddock-expires-at"  # sent as x-amz-meta-paddock-expires-at
ADDRESSING_STYLES = ("auto", "path", "virtual")
DEFAULT_REGION = "us-east-1"
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> `("bucket", "some/prefix/")`; the prefix is "" or ends in "/"."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "s3" or not sep:
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"s3:// storage needs a bucket, e.g. s3://my-bucket/paddock (got {url!r})")
    prefix = prefix.strip("/")
    if prefix:
        validate_key(prefix)  # the same rules as keys: no "..", no empty segments
    return bucket, (prefix + "/" if prefix else "")


def default_transfer_config() -> TransferConfig:
    """Multipart above 16 MiB in 16 MiB parts, 4 parts in flight (a 1080P 15 s video is ~20-60 MiB)."""
    return TransferConfig(
        multipart_threshold=DEFAULT_MULTIPART_THRESHOLD,
        multipart_chunksize=DEFAULT_MULTIPART_THRESHOLD,
        max_concurrency=4,
    )


def make_s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    addressing_style: str = "auto",
    max_attempts: int = 5,
    retry_mode: str = "standard",
) -> Any:
    """A boto3 S3 client (thread-safe) with retries, SigV4 and the right addressing style.

    `addressing_style="auto"` becomes "path" when `endpoint_url` is set: S3-compatible stores
    (MinIO, Garage, SeaweedFS, moto) rarely have wildcard DNS for virtual-hosted buckets."""
    if addressing_style not in ADDRESSING_STYLES:
        raise ValueError(
            f"PADDOCK_S3_ADDRESSING_STYLE must be one of {ADDRESSING_STYLES}, got {addressing_style!r}"
        )
    if addressing_style == "auto" and endpoint_url:
        addressing_style = "path"
    session = boto3.session.Session()
    config = Config(
        signature_version="s3v4",
        retries={"max_attempts": max_attempts, "mode": retry_mode},
        s3={"addressing_style": addressing_style},
        connect_timeout=10,
        read_timeout=60,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or session.region_name or os.environ.get("AWS_REGION") or DEFAULT_REGION,
        config=config,
    )


def client_from_settings(settings: Settings) -> Any:
    """The S3 client the `PADDOCK_S3_*` settings describe."""
    return make_s3_client(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        addressing_style=settings.s3_addressing_style,
    )


def is_missing(exc: ClientError) -> bool:
    """Whether a boto3 error means "no such key" (GET answers NoSuchKey, HEAD a bare 404)."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code", "")) in _MISSING_CODES or status == 404


class S3ObjectStore:
    """An `ObjectStore` in an S3 bucket under a key prefix; `url()` is a presigned GET."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any,
        public_base_url: str | None = None,
        transfer_config: TransferConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._client = client
        self._transfer = transfer_config or default_transfer_config()
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        """The store named by `settings.storage_url` (`s3://bucket/prefix`)."""
        bucket, prefix = parse_s3_url(settings.storage_url)
        return cls(
            bucket, prefix, client=client_from_settings(settings), public_base_url=settings.public_base_url
        )

    def full_key(self, key: str) -> str:
        """The S3 key of `key`: the prefix plus the validated key."""
        return self.prefix + validate_key(key)

    # -- writing ---------------------------------------------------------------------------------

    def _extra_args(self, content_type: str, expires_at: float) -> dict[str, Any]:
        return {"ContentType": content_type, "Metadata": {EXPIRES_META: repr(float(expires_at))}}

    def put_bytes(self, key: str, data: bytes, content_type: str, expires_at: float) -> None:
        """Store `data` under `key` (multipart above the threshold); missing after `expires_at`."""
        self._client.upload_fileobj(
            io.BytesIO(data),
            self.bucket,
            self.full_key(key),
            ExtraArgs=self._extra_args(content_type, expires_at),
            Config=self._transfer,
        )

    def put_file(self, key: str, path: Path, content_type: str, expires_at: float) -> None:
        """Store the file at `path` under `key` (multipart above the threshold)."""
        self._client.upload_file(
            str(path),
            self.bucket,
            self.full_key(key),
            ExtraArgs=self._extra_args(content_type, expires_at),
            Config=self._transfer,
        )

    # -- reading ---------------------------------------------------------------------------------

    def _expired(self, metadata: dict[str, str]) -> bool:
        """Whether object metadata says the object is past its expiry.

        An object without the field was not written by paddock: it is left to the lifecycle rule.
        A field nobody could have written is treated as expired, like the local store does."""
        raw = metadata.get(EXPIRES_META)
        if raw is None:
            return False
        try:
            return float(raw) <= self._clock()
        except ValueError:
            return True

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; `ObjectNotFound` when missing or expired."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self.full_key(key))
        except ClientError as exc:
            if is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise
        body = response["Body"]
        try:
            if self._expired(response.get("Metadata", {})):
                raise ObjectNotFound(key)
            return bytes(body.read())
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        """Whether `key` holds an unexpired object (one HEAD request)."""
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
        return not self._expired(response.get("Metadata", {}))

    # -- URLs ------------------------------------------------------------------------------------

    def presign_seconds(self, expires_at: float) -> int:
        """The presigned URL's lifetime: until `expires_at`, clamped to [1 s, 7 days]."""
        remaining = math.ceil(expires_at - self._clock())
        return max(MIN_PRESIGN_S, min(MAX_PRESIGN_S, remaining))

    def url(self, key: str, expires_at: float) -> str:
        """A presigned GET valid until `expires_at`, or the CDN URL when `public_base_url` is set."""
        full = self.full_key(key)
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(full, safe='/')}"
        return str(
            self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": full},
                ExpiresIn=self.presign_seconds(expires_at),
            )
        )

    # -- deleting --------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error (S3's DELETE is idempotent already)."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
        except ClientError as exc:
            if not is_missing(exc):
                raise
