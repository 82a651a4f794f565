"""The one storage interface for bytes the platform keeps beside its rows: photos, voice
notes, generated documents, anchors' heads. A local directory on a laptop; S3-compatible
object storage (MinIO, Ceph, 阿里云 OSS, 华为云 OBS …) when several servers share the files.
Rows name their bytes by key; nothing else in the code touches a file path or a bucket."""

from cityloop.storage.base import Storage, StorageUnavailable, storage_from_settings

__all__ = ["Storage", "StorageUnavailable", "storage_from_settings"]
