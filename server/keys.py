"""API keys as tenants (`PADDOCK_API_KEYS`).

The setting is a comma-separated list of keys (each its own tenant) or a path to a YAML file::

    keys:
      - key: sk-team-a-...
        tenant: team-a
        models: [happyhorse-1.0-i2v]     # optional: the models this key may use (default: all)
        quota: {submit_per_s: 5, running: 5, pending: 100}   # optional, each part too
        admin: true                      # optional: may see the operators' view of the playground
        webhook_url: https://hooks.example.com/paddock   # optional: told when each task ends
        webhook_secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   # signs the deliveries (required
                                                              # with a webhook, per key or per task)

`quota`: a token bucket of submissions per second (burst max(1, rate)), the key's running jobs
(more stay PENDING), and its waiting jobs; a refused submit answers 429 Throttling.RateQuota.

When unset, `paddock serve` creates one key, stores it in the data folder and prints it. That key
is an admin key: whoever started the server is its operator.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Tenant:
    """Who a key belongs to. `id` is stable and safe to log; the key itself never is."""

    id: str
    models: frozenset[str] | None = None
    quota: dict[str, Any] = field(default_factory=dict)
    admin: bool = False
    webhook_url: str | None = None  # where this key's tasks are announced when they end
    webhook_secret: str | None = None  # `whsec_<base64>`: the tenant's Standard Webhooks signing key

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


class KeyRing:
    """Maps API keys to tenants with constant-time comparison."""

    def __init__(self, tenants_by_key: dict[str, Tenant]) -> None:
        if not tenants_by_key:
            raise ValueError("at least one API key is required")
        # A tenant's webhooks are signed with the first secret among its keys, whichever key made
        # the task: every key of the tenant carries that secret.
        self._secrets: dict[str, str] = {}
        for tenant in tenants_by_key.values():
            if tenant.webhook_secret is not None:
                self._secrets.setdefault(tenant.id, tenant.webhook_secret)
        self._by_digest = {
            _digest(k): dataclasses.replace(t, webhook_secret=self._secrets.get(t.id))
            for k, t in tenants_by_key.items()
        }

    def lookup(self, key: str) -> Tenant | None:
        """The key's tenant, or None. Found by the key's SHA-256 digest: one dict lookup however
        many keys there are, and what a lookup's timing could reveal is about the digest, which
        says nothing about any key."""
        return self._by_digest.get(_digest(key))

    def webhook_secret(self, tenant_id: str) -> str | None:
        """The secret that signs `tenant_id`'s webhooks (the first one among its keys)."""
        return self._secrets.get(tenant_id)

    @classmethod
    def parse(cls, value: str) -> KeyRing:
        """From the `PADDOCK_API_KEYS` value: a YAML file path or a comma-separated list."""
        path = Path(value)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            return cls.from_yaml(path)
        keys = [k.strip() for k in value.split(",") if k.strip()]
        return cls({k: Tenant(id=tenant_id_for(k)) for k in keys})

    @classmethod
    def from_yaml(cls, path: Path) -> KeyRing:
        raw = yaml.safe_load(path.read_text()) or {}
        entries = raw.get("keys", [])
        tenants: dict[str, Tenant] = {}
        for entry in entries:
            key = str(entry["key"])
            models = entry.get("models")
            tenants[key] = Tenant(
                id=str(entry.get("tenant") or tenant_id_for(key)),
                models=frozenset(models) if models else None,
                quota=_quota(entry.get("quota"), key_index=len(tenants)),
                admin=_admin(entry.get("admin", False), key_index=len(tenants)),
                **_webhook(entry, key_index=len(tenants)),
            )
        return cls(tenants)

    @classmethod
    def load_or_create(cls, value: str | None, data_dir: Path) -> tuple[KeyRing, str | None]:
        """The configured keys; with none, the key stored in `data_dir` (created on first use).

        Returns the ring and the generated key (None when keys were configured)."""
        if value:
            return cls.parse(value), None
        key_file = data_dir / "api_key"
        if key_file.exists():
            key = key_file.read_text().strip()
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            key = "sk-paddock-" + secrets.token_hex(16)
            key_file.write_text(key + "\n")
            key_file.chmod(0o600)
        return cls({key: Tenant(id=tenant_id_for(key), admin=True)}), key


QUOTA_FIELDS = {"submit_per_s": float, "running": int, "pending": int}


def _quota(raw: Any, *, key_index: int) -> dict[str, Any]:
    """A key's `quota`, checked at load time so a typo fails the start, not a request."""
    if raw is None:
        return {}
    where = f"keys[{key_index}].quota"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of {', '.join(QUOTA_FIELDS)}")
    quota: dict[str, Any] = {}
    for name, value in raw.items():
        kind = QUOTA_FIELDS.get(str(name))
        if kind is None:
            raise ValueError(f"{where}: unknown field {name!r} (known: {', '.join(QUOTA_FIELDS)})")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{where}.{name}: expected a positive number, got {value!r}")
        quota[str(name)] = kind(value)
    return quota


def _admin(raw: Any, *, key_index: int) -> bool:
    """A key's `admin` flag: a YAML boolean, so that `admin: "no"` fails the start instead of granting."""
    if not isinstance(raw, bool):
        raise ValueError(f"keys[{key_index}].admin: expected true or false, got {raw!r}")
    return raw


def _webhook(entry: dict[str, Any], *, key_index: int) -> dict[str, str | None]:
    """A key's `webhook_url` and `webhook_secret`, checked at load time."""
    url, secret = entry.get("webhook_url"), entry.get("webhook_secret")
    where = f"keys[{key_index}]"
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise ValueError(f"{where}.webhook_url: expected an http(s) URL, got {url!r}")
    if secret is not None and not is_webhook_secret(secret):
        raise ValueError(f"{where}.webhook_secret: expected whsec_ followed by base64 (at least 16 bytes)")
    if url is not None and secret is None:
        raise ValueError(f"{where}: a webhook_url needs a webhook_secret to sign its deliveries")
    return {"webhook_url": url, "webhook_secret": secret}


def is_webhook_secret(value: Any) -> bool:
    """True for a Standard Webhooks secret: `whsec_` and the base64 of at least 16 bytes."""
    if not isinstance(value, str) or not value.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(value.removeprefix("whsec_"), validate=True)) >= 16
    except (binascii.Error, ValueError):
        return False


def tenant_id_for(key: str) -> str:
    """A stable, non-reversible tenant id for a bare key."""
    return "t-" + _digest(key)[:12]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
