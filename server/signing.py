"""HMAC signatures for the URLs and upload policies paddock hands out.

One secret signs everything: the local store's expiring file URLs (`/files/{key}?expires=&sig=`)
and the temporary-upload policies (API.md §5). The secret is `PADDOCK_SIGNING_SECRET` when set;
otherwise a random one kept in the data folder, so URLs survive restarts and every process that
shares the data folder (facade replicas, workers) signs and verifies alike.

Callers pass a purpose as the first part (`sign("file", key, expires)`) so a signature made for one
use can never be replayed for another. Parts are length-prefixed before hashing, so
`("ab", "c")` and `("a", "bc")` sign differently.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.config import Settings

SECRET_FILE = "signing_secret"
_SECRET_BYTES = 32


class Signer:
    """HMAC-SHA256 over a tuple of strings; signatures are URL-safe base64 without padding."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the signing secret must not be empty")
        self._secret = bytes(secret)

    def sign(self, *parts: str) -> str:
        """The signature of `parts` (order and boundaries matter)."""
        mac = hmac.new(self._secret, _encode(parts), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def verify(self, signature: str, *parts: str) -> bool:
        """Whether `signature` is `sign(*parts)`, compared in constant time."""
        expected = self.sign(*parts)
        return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))

    def __repr__(self) -> str:  # never show the secret
        return "Signer(<secret>)"


def _encode(parts: tuple[str, ...]) -> bytes:
    chunks = [f"{len(parts)}\n".encode()]
    for part in parts:
        raw = part.encode("utf-8")
        chunks.append(f"{len(raw)}:".encode())
        chunks.append(raw)
    return b"".join(chunks)


def load_or_create_secret(settings: Settings) -> bytes:
    """`settings.signing_secret`, else the secret in `data_dir/signing_secret` (made on first use).

    The file is created with mode 0600 and published with a hard link, so concurrent processes
    starting on an empty data folder all end up with the same secret."""
    if settings.signing_secret:
        return settings.signing_secret.encode("utf-8")
    path = Path(settings.data_dir) / SECRET_FILE
    existing = _read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    _publish_secret(path, secrets.token_hex(_SECRET_BYTES))
    secret = _read_secret(path)
    if secret is None:  # pragma: no cover - only if someone empties the file meanwhile
        raise RuntimeError(f"could not read the signing secret at {path}")
    return secret


def _read_secret(path: Path) -> bytes | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return text.encode("ascii") if text else None


def _publish_secret(path: Path, secret: str) -> None:
    """Write `secret` to a private temp file, then link it into place unless one already exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use theirs
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
