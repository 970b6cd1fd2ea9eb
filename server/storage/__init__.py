"""Object stores, chosen by `PADDOCK_STORAGE_URL` (DESIGN.md §1).

    file://./paddock-data    LocalObjectStore: a folder (relative to the working directory, or
                             absolute as file:///srv/paddock), served by the facade's /files/
    s3://bucket/prefix       S3ObjectStore: AWS S3 or an S3-compatible store (PADDOCK_S3_ENDPOINT_URL),
                             presigned GET URLs, keys under the prefix

`make_object_store` dispatches on the URL scheme through `_FACTORIES`; a new backend adds one
factory there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from server.storage.base import ObjectNotFound, ObjectStore
from server.storage.local import LocalObjectStore

if TYPE_CHECKING:
    from server.config import Settings
    from server.signing import Signer

__all__ = ["LocalObjectStore", "ObjectNotFound", "ObjectStore", "make_object_store"]

_Factory = Callable[[str, "Settings", "Signer"], ObjectStore]


def _local(rest: str, settings: Settings, signer: Signer) -> ObjectStore:
    if not rest:
        raise ValueError("file:// storage needs a folder, e.g. file://./paddock-data")
    return LocalObjectStore(Path(rest), settings.base_url, signer)


def _s3(rest: str, settings: Settings, signer: Signer) -> ObjectStore:
    # Imported here so a file:// deployment never loads boto3's S3 machinery.
    from server.storage.s3 import S3ObjectStore

    return S3ObjectStore.from_settings(settings)


_FACTORIES: dict[str, _Factory] = {"file": _local, "s3": _s3}


def make_object_store(settings: Settings, signer: Signer) -> ObjectStore:
    """The object store named by `settings.storage_url`; `ValueError` for an unknown scheme."""
    url = settings.storage_url
    scheme, sep, rest = url.partition("://")
    factory = _FACTORIES.get(scheme.lower()) if sep else None
    if factory is None:
        known = ", ".join(f"{name}://" for name in _FACTORIES)
        raise ValueError(f"unsupported storage URL {url!r} (expected one of: {known})")
    return factory(rest, settings, signer)
