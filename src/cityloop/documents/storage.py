"""Where document bytes are kept: one put / get / stream for the whole package, over a backend
with the shape of `cityloop.storage.Storage` (put with a content type, get raising KeyError,
chunks). The default backend is a local directory, `CITYLOOP_DATA_DIR`, with documents under
`documents/`; the app may hand over the platform's storage (`use`), which keeps the same keys.

Keys are content addresses, `documents/ab/abcdef….pdf` (the sha256), so writing is idempotent
and a file written by a transaction that then rolled back is an orphan no row points to, never
a number's wrong bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from cityloop.errors import NotFound
from cityloop.storage.base import LocalStorage

CHUNK = 64 * 1024
PREFIX = "documents"


class Backend(Protocol):
    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def get(self, key: str) -> bytes: ...

    def chunks(self, key: str, size: int = CHUNK) -> Iterator[bytes]: ...


_backend: Backend | None = None


def use(backend: Backend) -> None:
    """Keep documents in this backend from now on (the app does this from its settings)."""
    global _backend
    _backend = backend


def configure(root: Path) -> None:
    """Keep documents in a local directory (`root/documents/…`)."""
    use(LocalStorage(Path(root)))


def backend() -> Backend:
    if _backend is None:
        from cityloop.config import get_settings
        from cityloop.storage import storage_from_settings

        use(storage_from_settings(get_settings()))
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
