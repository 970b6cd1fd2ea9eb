"""Key files: the `admin` flag that opens the playground's operators' view, and the webhook fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.keys import KeyRing


def test_admin_is_a_per_key_flag_off_by_default(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - key: sk-ops\n    admin: true\n  - key: sk-team\n    tenant: team\n")
    ring = KeyRing.parse(str(path))
    assert ring.lookup("sk-ops").admin is True  # type: ignore[union-attr]
    assert ring.lookup("sk-team").admin is False  # type: ignore[union-attr]
    assert KeyRing.parse("sk-a,sk-b").lookup("sk-a").admin is False  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ['"yes"', "1", "on-call"])
def test_admin_must_be_a_boolean(tmp_path: Path, value: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - key: sk-ops\n  - key: sk-x\n    admin: {value}\n")
    with pytest.raises(ValueError, match=r"keys\[1\]\.admin: expected true or false"):
        KeyRing.parse(str(path))


def test_the_generated_local_key_is_an_admin_key(tmp_path: Path) -> None:
    ring, key = KeyRing.load_or_create(None, tmp_path)
    assert key is not None and ring.lookup(key).admin is True  # type: ignore[union-attr]
    again, same = KeyRing.load_or_create(None, tmp_path)
    assert same == key and again.lookup(key).admin is True  # type: ignore[union-attr]


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_webhook_fields_are_per_key_and_the_secret_is_found_by_tenant(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        "keys:\n"
        "  - key: sk-a\n    tenant: team\n    webhook_url: https://h.example/x\n"
        f"    webhook_secret: {SECRET}\n"
        "  - key: sk-b\n    tenant: team\n"
        "  - key: sk-c\n"
    )
    ring = KeyRing.parse(str(path))
    a, b = ring.lookup("sk-a"), ring.lookup("sk-b")
    assert a is not None and (a.webhook_url, a.webhook_secret) == ("https://h.example/x", SECRET)
    # sk-b has no webhook of its own, but its tasks (with a create's webhook_url) are signed with
    # the tenant's secret.
    assert b is not None and (b.webhook_url, b.webhook_secret) == (None, SECRET)
    assert ring.webhook_secret("team") == SECRET
    assert ring.webhook_secret(ring.lookup("sk-c").id) is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("webhook_url: https://h.example/x", "needs a webhook_secret"),
        ("webhook_url: ftp://h.example/x\n    webhook_secret: " + SECRET, "expected an http(s) URL"),
        ("webhook_secret: sk-not-a-secret", "expected whsec_"),
        ("webhook_secret: whsec_c2hvcnQ=", "at least 16 bytes"),
        ("webhook_secret: whsec_not*base64", "expected whsec_"),
    ],
)
def test_bad_webhook_fields_fail_the_start(tmp_path: Path, fields: str, message: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - key: sk-ops\n    {fields}\n")
    with pytest.raises(ValueError, match=r"keys\[0\].*" + re.escape(message)):
        KeyRing.parse(str(path))
