"""Photos and voice notes sent with page forms. The media package is their only keeper
(checks, storage, EXIF evidence); this module hands it the uploaded files and serves them back
to pages, which authenticate by the session cookie rather than a bearer token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from cityloop.errors import ValidationFailed
from cityloop.media import service as media

MAX_PHOTOS = 9


def uploads(form: FormData, name: str) -> list[UploadFile]:
    """The files actually chosen in a file input (a browser sends an empty part for none)."""
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and (f.filename or f.size)]


def peek(upload: UploadFile, settings: Any) -> bytes:
    """The bytes of an uploaded file (as store() will read them), the file rewound."""
    data = upload.file.read(settings.media_limits.max_photo_bytes + 1)
    upload.file.seek(0)
    return data


def store(
    session: Session,
    settings: Any,
    files: list[UploadFile],
    *,
    user_id: int | None,
    now: datetime,
    field: str = "photos",
) -> list[str]:
    """Keep each uploaded photo through the media service; returns their media ids."""
    if len(files) > MAX_PHOTOS:
        raise ValidationFailed(f"at most {MAX_PHOTOS} photos", field=field)
    limits = settings.media_limits
    ids = []
    for upload in files:
        data = upload.file.read(limits.max_photo_bytes + 1)
        row = media.store_photo(
            session,
            data,
            upload.filename,
            directory=settings.media_dir,
            now=now,
            uploaded_by=user_id,
            limits=limits,
            field=field,
        )
        ids.append(row.id)
    return ids


def store_voice(
    session: Session,
    settings: Any,
    upload: UploadFile | None,
    *,
    user_id: int | None,
    now: datetime,
    field: str = "voice",
) -> str | None:
    """Keep a recorded voice note through the media service's voice checks (type, size);
    returns its media id, or None when none was sent."""
    if upload is None:
        return None
    limits = settings.media_limits
    row = media.store_voice(
        session,
        upload.file.read(limits.max_voice_bytes + 1),
        upload.filename,
        upload.content_type,
        directory=settings.media_dir,
        now=now,
        uploaded_by=user_id,
        limits=limits,
        field=field,
    )
    return row.id
