"""The one storage interface (issue 20, part 4): a local directory and an S3-compatible
store behave alike, keys cannot escape their root, and a store that is down says so quickly
as StorageUnavailable instead of hanging a request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cityloop.storage.base import LocalStorage, S3Storage, StorageUnavailable, storage_from_url
from tests.storage.conftest import free_port


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    endpoint = request.getfixturevalue("s3_server")
    return storage_from_url(
        f"s3://cityloop-test/city?endpoint={endpoint}&create=1",
        local_root=tmp_path,
        access_key="test",
        secret_key="test",
    )


def test_objects_round_trip_and_are_listed_and_deleted(store) -> None:  # type: ignore[no-untyped-def]
    photo = bytes(range(256)) * 1000
    store.put("media/m1.jpg", photo, "image/jpeg")
    store.put("documents/d1.pdf", b"%PDF-1.7 ...", "application/pdf")
    assert store.get("media/m1.jpg") == photo
    assert b"".join(store.chunks("media/m1.jpg", size=4096)) == photo
    assert store.exists("media/m1.jpg") and not store.exists("media/m2.jpg")
    listed = [key for key, _ in store.listing("media/")]
    assert listed == ["media/m1.jpg"]
    assert all(modified > time.time() - 300 for _, modified in store.listing(""))
    store.delete("media/m1.jpg")
    assert not store.exists("media/m1.jpg")
    with pytest.raises(KeyError):
        store.get("media/m1.jpg")
    store.delete("media/m1.jpg")  # deleting what is gone is no error


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "media//x", "media/./x", ""])
def test_a_key_cannot_leave_its_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalStorage(tmp_path).put(key, b"x")


def test_a_store_that_is_down_answers_unavailable_quickly(tmp_path: Path) -> None:
    store = S3Storage(
        "cityloop-test",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        access_key="test",
        secret_key="test",
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        store.put("media/m1.jpg", b"x")
    assert time.monotonic() - started < 15


def test_the_url_chooses_the_backend(tmp_path: Path) -> None:
    assert isinstance(storage_from_url("", local_root=tmp_path), LocalStorage)
    chosen = storage_from_url(f"file://{tmp_path / 'elsewhere'}", local_root=tmp_path)
    assert isinstance(chosen, LocalStorage) and chosen.root == tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="unknown scheme"):
        storage_from_url("ftp://x/y", local_root=tmp_path)
    with pytest.raises(ValueError, match="needs a bucket"):
        storage_from_url("s3:///nobucket", local_root=tmp_path)
