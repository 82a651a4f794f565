"""REST edge of media: upload a photo or voice note, fetch it back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from cityloop.deps import NowDep, SessionDep, UserDep, saved_in_thread
from cityloop.media import service
from cityloop.media.models import Media

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
def fetch(media_id: str, request: Request, session: SessionDep, user: UserDep) -> FileResponse:
    row = service.get_media(session, media_id)
    return FileResponse(
        service.media_path(request.app.state.settings.media_dir, row), media_type=row.content_type
    )
