"""The object store interface: results and uploaded inputs.

Implementations: `local.LocalObjectStore` (`file://`: a folder served by the facade at
HMAC-signed URLs) and `s3.S3ObjectStore` (`s3://`: boto3, presigned GETs). Methods are
synchronous (boto3 is); async callers use `asyncio.to_thread`. Keys are plain relative paths
(`results/{task_id}/{attempt}.mp4`); writing the same key twice replaces the object, so
redelivered jobs are harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ObjectNotFound(Exception):
    """The key does not exist (or has expired)."""


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str, expires_at: float) -> None:
        """Store `data` under `key`; it may be deleted any time after `expires_at` (epoch s)."""

    def put_file(self, key: str, path: Path, content_type: str, expires_at: float) -> None:
        """Store the file at `path` under `key` (same expiry rule)."""

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes. Raises `ObjectNotFound`."""

    def exists(self, key: str) -> bool:
        """Whether `key` holds an unexpired object."""

    def url(self, key: str, expires_at: float) -> str:
        """A URL that GETs the object until `expires_at`, with no other credentials."""

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
