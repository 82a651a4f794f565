"""Where document bytes are kept: one put / get / stream, today a local directory
(`CITYLOOP_DATA_DIR/documents`). Keys are content addresses (the sha256), so writing is
idempotent and a file written by a transaction that then rolled back is an orphan no row
points to, never a number's wrong bytes. A later issue makes this an interface with an
S3-compatible backend beside the local one; callers only use these functions.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cityloop.errors import NotFound

CHUNK = 64 * 1024
_root: Path | None = None


def configure(root: Path) -> None:
    """Keep documents under `root` (the app does this from its settings)."""
    global _root
    _root = Path(root)


def root() -> Path:
    if _root is None:
        from cityloop.config import get_settings

        configure(get_settings().documents_dir)
    assert _root is not None
    return _root


def key_for(sha256: str, suffix: str = ".pdf") -> str:
    return f"{sha256[:2]}/{sha256}{suffix}"


def _path(key: str) -> Path:
    if ".." in key.split("/") or key.startswith("/"):
        raise ValueError(f"bad storage key {key!r}")
    return root() / key


def put(key: str, data: bytes) -> None:
    """Store the bytes under the key, atomically (a reader never sees half a file)."""
    path = _path(key)
    if path.exists() and path.stat().st_size == len(data):
        return  # content-addressed: already there
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def get(key: str) -> bytes:
    try:
        return _path(key).read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"the stored file {key} is missing", field="storage_key") from exc


def stream(key: str) -> Iterator[bytes]:
    """The bytes in chunks, for exports whose memory must not grow with the files."""
    try:
        handle = _path(key).open("rb")
    except FileNotFoundError as exc:
        raise NotFound(f"the stored file {key} is missing", field="storage_key") from exc
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk
