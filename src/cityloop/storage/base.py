"""The interface, its two backends, and the choice between them from the settings."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


class StorageUnavailable(Exception):
    """The store did not answer (object store down, network): the caller's request fails
    with 503 and may be retried; nothing was kept."""


class Storage(Protocol):
    """Keys are relative paths such as ``media/m1a2….jpg``; values are whole objects."""

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def get(self, key: str) -> bytes: ...

    def chunks(self, key: str, size: int = 1 << 16) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def listing(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, modified at as a UNIX time) of every object under the prefix."""
        ...


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


@dataclass
class LocalStorage:
    """A directory; writes go to a temporary file renamed into place, so a reader never sees
    half an object."""

    root: Path

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

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

    def chunks(self, key: str, size: int = 1 << 16) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        with handle:
            while block := handle.read(size):
                yield block

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def listing(self, prefix: str) -> Iterator[tuple[str, float]]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(".part-"):
                yield path.relative_to(self.root).as_posix(), path.stat().st_mtime

    def path_of(self, key: str) -> Path:
        """Local files only: the path a file response can send without reading it first."""
        return self._path(key)


class S3Storage:
    """An S3-compatible bucket through boto3. Timeouts are short and retries few: a request
    waiting on a store that is down answers 503 quickly instead of holding a worker."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        create_bucket: bool = False,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(
                connect_timeout=2,
                read_timeout=10,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )
        if create_bucket:
            self._call(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(args or kwargs) from exc
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if status >= 500:
                raise StorageUnavailable(f"object store answered {status}") from exc
            raise
        except BotoCoreError as exc:  # connection refused, timeouts, DNS
            raise StorageUnavailable(f"object store unreachable: {exc}") from exc

    def _key(self, key: str) -> str:
        return self.prefix + _safe_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._call(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    def get(self, key: str) -> bytes:
        answer = self._call(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return bytes(answer["Body"].read())

    def chunks(self, key: str, size: int = 1 << 16) -> Iterator[bytes]:
        answer = self._call(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        body = answer["Body"]
        try:
            while block := body.read(size):
                yield block
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        try:
            self._call(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except KeyError:
            return False
        return True

    def listing(self, prefix: str) -> Iterator[tuple[str, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(
            lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix))
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :], item["LastModified"].timestamp()


def storage_from_url(
    url: str, *, local_root: Path, access_key: str = "", secret_key: str = ""
) -> Storage:
    """``""`` or ``file:///path``: a local directory; ``s3://bucket/prefix?endpoint=http://…
    &region=…&create=1``: an S3-compatible store."""
    if not url:
        return LocalStorage(local_root)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(Path(parts.path))
    if parts.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not parts.netloc:
            raise ValueError("CITYLOOP_STORAGE_URL: s3://<bucket>/… needs a bucket")
        return S3Storage(
            parts.netloc,
            prefix=parts.path,
            endpoint_url=query.get("endpoint"),
            access_key=access_key or None,
            secret_key=secret_key or None,
            region=query.get("region", "us-east-1"),
            create_bucket=query.get("create") in ("1", "true"),
        )
    raise ValueError(f"CITYLOOP_STORAGE_URL: unknown scheme {parts.scheme!r} (file or s3)")


def storage_from_settings(settings: Any) -> Storage:
    return storage_from_url(
        settings.storage_url,
        local_root=settings.data_dir,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
    )
