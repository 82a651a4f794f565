"""Where document bytes are kept: one put / get / stream for the whole package, over a backend
with the shape of `cityloop.storage.Storage` (put with a content type, get raising KeyError,
chunks). The default backend is a local directory, `CITYLOOP_DATA_DIR`, with documents under
`documents/`; the app may hand over the platform's storage (`use`), which keeps the same keys.

Keys are content addresses, `documents/ab/abcdef….pdf` (the sha256), so writing is idempotent
and a file written by a transaction that then rolled back is an orphan no row points to, never
a number's wrong bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cityloop.errors import NotFound

CHUNK = 64 * 1024
PREFIX = "documents"


class Backend(Protocol):
    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def get(self, key: str) -> bytes: ...

    def chunks(self, key: str, size: int = CHUNK) -> Iterator[bytes]: ...


@dataclass
class LocalDirectory:
    """Files under a directory, written to a temporary file renamed into place (a reader never
    sees half a file)."""

    root: Path

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(key) from exc

    def chunks(self, key: str, size: int = CHUNK) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        with handle:
            while block := handle.read(size):
                yield block


_backend: Backend | None = None


def use(backend: Backend) -> None:
    """Keep documents in this backend from now on (the app does this from its settings)."""
    global _backend
    _backend = backend


def configure(root: Path) -> None:
    """Keep documents in a local directory (`root/documents/…`)."""
    use(LocalDirectory(Path(root)))


def backend() -> Backend:
    if _backend is None:
        from cityloop.config import get_settings

        configure(get_settings().data_dir)
    assert _backend is not None
    return _backend


def key_for(sha256: str, suffix: str = ".pdf") -> str:
    return f"{PREFIX}/{sha256[:2]}/{sha256}{suffix}"


def put(key: str, data: bytes, content_type: str = "application/pdf") -> None:
    backend().put(key, data, content_type)


def get(key: str) -> bytes:
    try:
        return backend().get(key)
    except KeyError as exc:
        raise NotFound(f"the stored file {key} is missing", field="storage_key") from exc


def stream(key: str) -> Iterator[bytes]:
    """The bytes in chunks, for exports whose memory must not grow with the files."""
    chunks = backend().chunks(key, CHUNK)
    try:
        yield from chunks
    except KeyError as exc:
        raise NotFound(f"the stored file {key} is missing", field="storage_key") from exc
