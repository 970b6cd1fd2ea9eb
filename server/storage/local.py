"""`file://` object store: a local folder, served by the facade at HMAC-signed expiring URLs.

Layout under `root`::

    objects/<key>        the bytes
    meta/<key>.json      {"content_type": ..., "expires_at": ...}
    tmp/                 writes in progress (same filesystem, so `os.replace` is atomic)

A write goes to `tmp/` first and is renamed into place: a crash leaves at most a stray temp file
(removed by `sweep`), never a half-written object. The metadata is published before the bytes,
so a visible object always has its expiry. An object past its `expires_at` reads as missing at
once and is deleted by the next `sweep` (the facade runs one periodically).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from server.signing import Signer
from server.storage.base import ObjectNotFound

FILE_PURPOSE = "file"
MAX_KEY_LENGTH = 1024
_STALE_TMP_S = 3600.0
_DIR_RACE_RETRIES = 3


def validate_key(key: str) -> str:
    """`key` if it is a plain relative path that stays inside the store, else `ValueError`."""
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError("object key is too long")
    if "\\" in key or "\x00" in key or key.startswith("/"):
        raise ValueError(f"invalid object key: {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid object key: {key!r}")
    if any(ord(ch) < 0x20 for ch in key):
        raise ValueError(f"invalid object key: {key!r}")
    return key


class LocalObjectStore:
    """An `ObjectStore` in a local folder; `url()` points at the facade's `/files/` route."""

    def __init__(
        self,
        root: Path,
        base_url: str,
        signer: Signer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.base_url = base_url.rstrip("/")
        self._signer = signer
        self._clock = clock
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"
        for folder in (self._objects, self._meta, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)

    # -- paths -----------------------------------------------------------------------------------

    def _object_path(self, key: str) -> Path:
        path = self._objects / validate_key(key)
        if not path.resolve().is_relative_to(self._objects):  # a symlink planted in the folder
            raise ValueError(f"invalid object key: {key!r}")
        return path

    def _meta_path(self, key: str) -> Path:
        return self._meta / (validate_key(key) + ".json")

    # -- writing ---------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, content_type: str, expires_at: float) -> None:
        """Store `data` under `key` atomically; it reads as missing after `expires_at`."""
        self._put(key, content_type, expires_at, lambda fh: fh.write(data))

    def put_file(self, key: str, path: Path, content_type: str, expires_at: float) -> None:
        """Store a copy of the file at `path` under `key` atomically."""

        def copy(fh: Any) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, fh, 1024 * 1024)

        self._put(key, content_type, expires_at, copy)

    def _put(self, key: str, content_type: str, expires_at: float, write: Callable[[Any], Any]) -> None:
        target = self._object_path(key)
        meta = json.dumps({"content_type": content_type, "expires_at": float(expires_at)}).encode()
        data_tmp = self._write_tmp(write)
        try:
            meta_tmp = self._write_tmp(lambda fh: fh.write(meta))
            try:
                self._publish(meta_tmp, self._meta_path(key))
            finally:
                _unlink_quietly(meta_tmp)
            self._publish(data_tmp, target)
        finally:
            _unlink_quietly(data_tmp)

    def _write_tmp(self, write: Callable[[Any], Any]) -> Path:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    def _publish(self, tmp: Path, target: Path) -> None:
        """`os.replace(tmp, target)`, recreating the parent if a concurrent sweep removed it."""
        for attempt in range(_DIR_RACE_RETRIES):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, target)
                return
            except FileNotFoundError:
                if attempt == _DIR_RACE_RETRIES - 1 or not tmp.exists():
                    raise

    # -- reading ---------------------------------------------------------------------------------

    def _live_meta(self, key: str) -> dict[str, Any]:
        """The metadata of an unexpired object, else `ObjectNotFound`."""
        try:
            meta = json.loads(self._meta_path(key).read_bytes())
            expires_at = float(meta.get("expires_at", 0))
        except (FileNotFoundError, NotADirectoryError, ValueError, TypeError, AttributeError) as exc:
            raise ObjectNotFound(key) from exc  # missing, or metadata nobody could have written whole
        if expires_at <= self._clock():
            raise ObjectNotFound(key)
        if not self._object_path(key).is_file():
            raise ObjectNotFound(key)
        return meta  # type: ignore[no-any-return]

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; `ObjectNotFound` when missing or expired."""
        self._live_meta(key)
        try:
            return self._object_path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc

    def exists(self, key: str) -> bool:
        """Whether `key` holds an unexpired object."""
        try:
            self._live_meta(key)
        except ObjectNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        """The object's size in bytes; `ObjectNotFound` when missing or expired."""
        self._live_meta(key)
        try:
            return self._object_path(key).stat().st_size
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def open_for_serving(self, key: str) -> tuple[Path, str]:
        """The path of an unexpired object and its content type, for `FileResponse`."""
        meta = self._live_meta(key)
        return self._object_path(key), str(meta.get("content_type") or "application/octet-stream")

    # -- URLs ------------------------------------------------------------------------------------

    def url(self, key: str, expires_at: float) -> str:
        """`{base_url}/files/{key}?expires=&sig=`: a GET URL valid until `expires_at`."""
        validate_key(key)
        expires = int(expires_at)
        query = urlencode({"expires": expires, "sig": self._signer.sign(FILE_PURPOSE, key, str(expires))})
        return f"{self.base_url}/files/{quote(key, safe='/')}?{query}"

    def verify_url(self, key: str, expires: str, sig: str) -> bool:
        """Whether `expires`/`sig` are a genuine, unexpired signature for `key`."""
        if not expires.isdigit() or not self._signer.verify(sig, FILE_PURPOSE, key, expires):
            return False
        return int(expires) > self._clock()

    # -- deleting --------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        """Remove `key` (bytes first, then metadata); a missing key is not an error."""
        target = self._object_path(key)
        _unlink_quietly(target)
        self._prune_dirs(target.parent, self._objects)
        meta = self._meta_path(key)
        _unlink_quietly(meta)
        self._prune_dirs(meta.parent, self._meta)

    @staticmethod
    def _prune_dirs(folder: Path, stop: Path) -> None:
        """Remove now-empty folders from `folder` up to (not including) `stop`."""
        while folder != stop and folder.is_relative_to(stop):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def sweep(self, now: float | None = None) -> int:
        """Delete every object expired at `now` (default: the clock) and stale temp files.

        Returns the number of objects deleted."""
        now = self._clock() if now is None else now
        removed = 0
        for key, expires_at in self._iter_meta():
            if expires_at <= now:
                with contextlib.suppress(ValueError):  # a stray file that is no valid key
                    self.delete(key)
                    removed += 1
        self._sweep_tmp()
        return removed

    def _iter_meta(self) -> Iterator[tuple[str, float]]:
        for meta in list(self._meta.rglob("*.json")):
            key = meta.relative_to(self._meta).as_posix()[: -len(".json")]
            try:
                expires_at = float(json.loads(meta.read_bytes()).get("expires_at", 0))
            except FileNotFoundError:
                continue
            except (ValueError, TypeError, AttributeError):
                expires_at = 0.0  # unreadable metadata: the object is unusable, drop it
            yield key, expires_at

    def _sweep_tmp(self) -> None:
        """Remove temp files left by writes that crashed (file times are wall-clock times)."""
        cutoff = time.time() - _STALE_TMP_S
        for tmp in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        path.unlink()
