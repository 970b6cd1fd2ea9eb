"""Key files: the `admin` flag that opens the playground's operators' view."""

from __future__ import annotations

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
