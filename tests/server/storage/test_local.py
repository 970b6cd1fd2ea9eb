"""The signer, the signing secret, and the local (`file://`) object store."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from server.config import Settings
from server.signing import Signer, load_or_create_secret
from server.storage import LocalObjectStore, ObjectNotFound, make_object_store


class Clock:
    """A settable clock for expiry tests."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "data", "http://paddock.test/", Signer(b"k" * 32), clock=clock)


# -- Signer --------------------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    signer = Signer(b"secret")
    sig = signer.sign("file", "a/b.mp4", "123")
    assert "=" not in sig and "+" not in sig and "/" not in sig
    assert signer.verify(sig, "file", "a/b.mp4", "123")
    assert not signer.verify(sig, "file", "a/b.mp4", "124")
    assert not signer.verify(sig[:-1] + ("A" if sig[-1] != "A" else "B"), "file", "a/b.mp4", "123")
    assert not Signer(b"other").verify(sig, "file", "a/b.mp4", "123")
    assert not signer.verify("not ascii é", "file", "a/b.mp4", "123")


def test_sign_part_boundaries_matter() -> None:
    signer = Signer(b"secret")
    assert signer.sign("ab", "c") != signer.sign("a", "bc")
    assert signer.sign("abc") != signer.sign("abc", "")


def test_signer_rejects_empty_secret_and_hides_it() -> None:
    with pytest.raises(ValueError):
        Signer(b"")
    assert "secret" not in repr(Signer(b"supersecret")).replace("<secret>", "")


def test_secret_from_settings(tmp_path: Path) -> None:
    settings = Settings(signing_secret="configured", data_dir=tmp_path)
    assert load_or_create_secret(settings) == b"configured"
    assert not (tmp_path / "signing_secret").exists()


def test_secret_persisted_private_and_stable(tmp_path: Path) -> None:
    settings = Settings(signing_secret=None, data_dir=tmp_path / "d")
    first = load_or_create_secret(settings)
    path = tmp_path / "d" / "signing_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_or_create_secret(settings) == first
    assert [p.name for p in path.parent.iterdir()] == ["signing_secret"]  # no temp files left


def test_secret_concurrent_creation_agrees(tmp_path: Path) -> None:
    settings = Settings(signing_secret=None, data_dir=tmp_path)
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(load_or_create_secret(settings))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1


# -- LocalObjectStore ----------------------------------------------------------------------------


def test_put_get_exists_delete(store: LocalObjectStore, clock: Clock) -> None:
    store.put_bytes("results/t1/0.mp4", b"video", "video/mp4", clock.now + 60)
    assert store.exists("results/t1/0.mp4")
    assert store.get_bytes("results/t1/0.mp4") == b"video"
    assert store.size("results/t1/0.mp4") == 5
    path, ctype = store.open_for_serving("results/t1/0.mp4")
    assert path.read_bytes() == b"video" and ctype == "video/mp4"
    store.delete("results/t1/0.mp4")
    assert not store.exists("results/t1/0.mp4")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("results/t1/0.mp4")
    store.delete("results/t1/0.mp4")  # missing is fine
    assert not (store.root / "objects" / "results").exists()  # empty folders pruned


def test_put_file_and_overwrite(store: LocalObjectStore, clock: Clock, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(300_000))
    store.put_file("a/b.bin", src, "application/octet-stream", clock.now + 60)
    assert store.get_bytes("a/b.bin") == src.read_bytes()
    store.put_bytes("a/b.bin", b"new", "text/plain", clock.now + 60)
    assert store.get_bytes("a/b.bin") == b"new"
    assert store.open_for_serving("a/b.bin")[1] == "text/plain"


def test_missing_key(store: LocalObjectStore) -> None:
    assert not store.exists("nope")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("nope")
    with pytest.raises(ObjectNotFound):
        store.open_for_serving("nope/deeper")


def test_expired_reads_as_missing(store: LocalObjectStore, clock: Clock) -> None:
    store.put_bytes("k", b"x", "text/plain", clock.now + 10)
    clock.now += 10
    assert not store.exists("k")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("k")
    with pytest.raises(ObjectNotFound):
        store.open_for_serving("k")


@pytest.mark.parametrize(
    "key",
    ["", "../x", "a/../../x", "/etc/passwd", "a\\b", "a//b", "a/./b", "a/..", ".", "a/", "a\x00b", "a\nb"],
)
def test_bad_keys_refused(store: LocalObjectStore, key: str, clock: Clock) -> None:
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x", "text/plain", clock.now + 10)
    with pytest.raises(ValueError):
        store.url(key, clock.now + 10)
    assert not (store.root.parent / "x").exists()


def test_symlink_escape_refused(store: LocalObjectStore, tmp_path: Path, clock: Clock) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "objects" / "link").symlink_to(outside)
    with pytest.raises(ValueError):
        store.put_bytes("link/x", b"x", "text/plain", clock.now + 10)
    assert list(outside.iterdir()) == []


def test_failed_write_leaves_nothing(
    store: LocalObjectStore, clock: Clock, tmp_path: Path, monkeypatch
) -> None:
    store.put_bytes("a/b", b"old", "text/plain", clock.now + 60)
    src = tmp_path / "big.bin"
    src.write_bytes(b"y" * 100_000)

    def broken_copy(fsrc, fdst, length=0):  # writes half, then the disk "fails"
        fdst.write(fsrc.read(50_000))
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfileobj", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        store.put_file("a/b", src, "text/plain", clock.now + 60)
    with pytest.raises(OSError, match="disk full"):
        store.put_file("a/new", src, "text/plain", clock.now + 60)
    assert store.get_bytes("a/b") == b"old"  # the previous version is intact
    assert not store.exists("a/new")
    assert not (store.root / "objects" / "a" / "new").exists()
    assert list((store.root / "tmp").iterdir()) == []


def test_sweep(store: LocalObjectStore, clock: Clock) -> None:
    store.put_bytes("results/t1/0.mp4", b"1", "video/mp4", clock.now + 10)
    store.put_bytes("results/t2/0.mp4", b"2", "video/mp4", clock.now + 100)
    store.put_bytes("uploads/x/y/z.png", b"3", "image/png", clock.now + 5)
    stale = store.root / "tmp" / "put-crashed"
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    fresh = store.root / "tmp" / "put-inflight"
    fresh.write_bytes(b"partial")
    assert store.sweep(clock.now) == 0
    assert store.sweep(clock.now + 50) == 2
    assert store.exists("results/t2/0.mp4")
    assert not (store.root / "objects" / "results" / "t1").exists()
    assert not (store.root / "objects" / "uploads").exists()
    assert not (store.root / "meta" / "uploads").exists()
    assert not stale.exists() and fresh.exists()
    clock.now += 1000
    assert store.sweep() == 1
    assert list((store.root / "objects").iterdir()) == []


def test_url_and_verify(store: LocalObjectStore, clock: Clock) -> None:
    url = store.url("results/t 1/0.mp4", clock.now + 60.7)
    parts = urlsplit(url)
    assert url.startswith("http://paddock.test/files/results/t%201/0.mp4?")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["expires"] == str(int(clock.now + 60.7))
    assert store.verify_url("results/t 1/0.mp4", query["expires"], query["sig"])
    assert not store.verify_url("results/t 1/1.mp4", query["expires"], query["sig"])
    assert not store.verify_url("results/t 1/0.mp4", str(int(query["expires"]) + 1), query["sig"])
    assert not store.verify_url("results/t 1/0.mp4", "-1", query["sig"])
    clock.now += 61
    assert not store.verify_url("results/t 1/0.mp4", query["expires"], query["sig"])


def test_make_object_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    signer = Signer(b"k")
    store = make_object_store(Settings(storage_url="file://./pd", public_url="http://h:1/"), signer)
    assert isinstance(store, LocalObjectStore)
    assert store.root == tmp_path / "pd"
    assert store.url("a", 10).startswith("http://h:1/files/a?")
    absolute = make_object_store(Settings(storage_url=f"file://{tmp_path}/abs"), signer)
    assert isinstance(absolute, LocalObjectStore) and absolute.root == tmp_path / "abs"
    s3 = make_object_store(Settings(storage_url="s3://bucket/prefix"), signer)  # see test_store_contract
    assert type(s3).__name__ == "S3ObjectStore"
    for bad in ("ftp://x", "paddock-data", "file://"):
        with pytest.raises(ValueError):
            make_object_store(Settings(storage_url=bad), signer)
