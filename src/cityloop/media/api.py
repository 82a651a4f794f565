"""REST edge of media: upload a photo or voice note, fetch it back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from cityloop.cases.citations import may_fetch_media
from cityloop.cases.service import Actor
from cityloop.deps import NowDep, SessionDep, UserDep, saved_in_thread
from cityloop.errors import NotFound
from cityloop.media import service
from cityloop.media.models import Media
from cityloop.org.models import User
from cityloop.storage.base import LocalStorage

router = APIRouter(prefix="/api/v1", tags=["media 照片"])


class MediaOut(BaseModel):
    id: str
    kind: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    original_name: str
    taken_at: str | None
    exif_lon: float | None
    exif_lat: float | None


def media_out(row: Media) -> MediaOut:
    return MediaOut(
        id=row.id,
        kind=row.kind,
        content_type=row.content_type,
        size=row.size,
        width=row.width,
        height=row.height,
        original_name=row.original_name,
        taken_at=row.taken_at.isoformat() if row.taken_at else None,
        exif_lon=row.exif_lon,
        exif_lat=row.exif_lat,
    )


@router.post(
    "/media",
    response_model=MediaOut,
    status_code=201,
    summary="Upload a photo (JPEG/PNG/WebP) or a voice note 上传照片/语音",
)
async def upload(
    request: Request,
    file: Annotated[UploadFile, File(description="the photo or voice note")],
    session: SessionDep,
    user: UserDep,
    now: NowDep,
) -> MediaOut:
    settings = request.app.state.settings
    data = await file.read(settings.media_limits.max_photo_bytes + 1)

    common: dict[str, Any] = {
        "directory": settings.media_dir,
        "now": now,
        "uploaded_by": user.id,
        "limits": settings.media_limits,
        "field": "file",
    }

    def save() -> MediaOut:
        if (file.content_type or "").startswith("audio/"):
            row = service.store_voice(session, data, file.filename, file.content_type, **common)
        else:
            row = service.store_photo(session, data, file.filename, **common)
        return media_out(row)

    return await saved_in_thread(session, save)


@router.get(
    "/media/{media_id}", summary="Fetch a photo or voice note 查看照片", response_class=FileResponse
)
def fetch(media_id: str, request: Request, session: SessionDep, user: UserDep) -> Response:
    row = visible_media(session, user, media_id)
    return media_response(request.app.state.settings.media_dir, row)


def media_response(directory: Path, row: Media) -> Response:
    """The answer serving a media row: the file itself from a local directory, the object
    streamed from a shared store (read first, so a missing object is a 404, not a cut body)."""
    store, key = service.media_object(directory, row)
    headers = service.SERVING_HEADERS
    if isinstance(store, LocalStorage):
        path = store.path_of(key)
        if not path.is_file():
            raise NotFound(f"media {row.id} is missing its file")
        return FileResponse(path, media_type=row.content_type, headers=headers)
    chunks = store.chunks(key)
    try:
        first = next(chunks, b"")
    except KeyError as exc:
        raise NotFound(f"media {row.id} is missing its file") from exc

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(body(), media_type=row.content_type, headers=headers)


def visible_media(session: Session, user: User, media_id: str) -> Media:
    """The media row, for its uploader or someone who may see a case citing it; otherwise the
    answer for an id that does not exist (404: it must not tell that the photo exists)."""
    row = service.get_media(session, media_id)
    if not may_fetch_media(session, Actor.of(user), row.id, row.uploaded_by):
        raise NotFound(f"no media {media_id}")
    return row
