"""Checking and keeping media. Files are written before the row is flushed, so there is never
a row without its file; a transaction that rolls back removes the files it wrote (a refused
report leaves nothing on disk), and `sweep_orphans` removes what a killed process left.
Every byte reaches storage through `_write_file` (one place to swap for an object store)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import secrets
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, UnidentifiedImageError
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from cityloop.errors import NotFound, ValidationFailed
from cityloop.media.models import Media
from cityloop.storage.base import LocalStorage, Storage, StorageUnavailable

PHOTO_FORMATS = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
VOICE_TYPES = {
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/ogg": ".ogg",
    "audio/webm": ".webm",
}
_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")
# ISO media brands that are still pictures, not sound (an iPhone's HEIC photo is ftyp too).
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
# EXIF clocks before this are unset or broken cameras, not evidence.
_EARLIEST_PHOTO_YEAR = 2000


def sniff_voice(data: bytes) -> str | None:
    """The audio type the bytes themselves are (their container's signature), None when they
    are not a recording the platform plays: a declared type proves nothing."""
    head = data[:16]
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"
    if head[4:8] == b"ftyp" and head[8:12] not in _IMAGE_BRANDS:
        return "audio/mp4"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS: sync, layer 0
            return "audio/aac"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:  # MPEG audio frame, layer I-III
            return "audio/mpeg"
    return None


@dataclass(frozen=True)
class MediaLimits:
    max_photo_bytes: int = 10 * 1024 * 1024
    max_photo_pixels: int = 40_000_000
    max_voice_bytes: int = 5 * 1024 * 1024
    # Memory one decode may take: a JPEG over it is decoded scaled down (its DCT scaling,
    # Image.draft), a PNG or WebP over it is refused before decoding. A 40 MP RGBA PNG of
    # 170 KB took 160 MB to decode (issue 23).
    decode_budget_bytes: int = 64 * 1024 * 1024
    # Decodes at once in a process; more wait their turn (peak memory = this × the budget).
    decodes_at_once: int = 2


@lru_cache(maxsize=4)
def _decode_slots(count: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(count)


def _bytes_per_pixel(image: Image.Image) -> int:
    if image.mode in ("I", "F", "RGBa", "RGBX", "CMYK", "RGBA", "I;32"):
        return 4
    if "16" in image.mode:
        return 2 * len(image.getbands())
    return len(image.getbands())


def declared_pixels(data: bytes) -> int:
    """The pixels a photo says it has (its header alone, nothing decoded); 0 when the bytes
    are no image at all (store_photo then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                return int(width * height)
    except Exception:  # any unreadable header: not ours to explain here
        return 0


def _clean_name(filename: str | None) -> str:
    # Only the last path part, and only harmless characters: the name is shown, never used
    # as a path.
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _SAFE_NAME.sub("_", base)[:120]


def _exif_evidence(
    image: Image.Image, tz: str
) -> tuple[datetime | None, float | None, float | None]:
    try:
        exif = image.getexif()
    except Exception:  # malformed EXIF is common on phones: evidence is optional
        return None, None, None
    taken: datetime | None = None
    raw_time = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
    if isinstance(raw_time, str):
        try:
            taken = datetime.strptime(raw_time.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(
                tzinfo=ZoneInfo(tz)
            )
        except ValueError:
            taken = None
    lon = lat = None
    gps = exif.get_ifd(0x8825)
    try:
        if gps and 2 in gps and 4 in gps:
            lat = _degrees(gps[2]) * (-1 if gps.get(1) == "S" else 1)
            lon = _degrees(gps[4]) * (-1 if gps.get(3) == "W" else 1)
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                lat = lon = None
    except (TypeError, ValueError, ZeroDivisionError):
        lat = lon = None
    return taken, lon, lat


def _degrees(dms: Any) -> float:
    d, m, s = (float(x) for x in dms)
    return d + m / 60 + s / 3600


def store_photo(
    session: Session,
    data: bytes,
    filename: str | None,
    *,
    directory: Path,
    now: datetime,
    uploaded_by: int | None = None,
    limits: MediaLimits = MediaLimits(),
    field: str = "photos",
) -> Media:
    """Check that the bytes are a real photo within limits, keep them, return the row."""
    name = _clean_name(filename)
    if len(data) == 0:
        raise ValidationFailed(f"{name or 'the photo'} is empty", field=field)
    if len(data) > limits.max_photo_bytes:
        raise ValidationFailed(
            f"{name or 'the photo'} is {len(data) // 1024} KB; photos may be at most "
            f"{limits.max_photo_bytes // (1024 * 1024)} MB",
            field=field,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                width, height = probe.size
                if width * height > limits.max_photo_pixels:
                    raise ValidationFailed(
                        f"{name or 'the photo'} has {width}×{height} pixels, more than the "
                        f"{limits.max_photo_pixels:,} allowed",
                        field=field,
                    )
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                needed = width * height * _bytes_per_pixel(image)
                if needed > limits.decode_budget_bytes:
                    if fmt != "JPEG":
                        raise ValidationFailed(
                            f"{name or 'the photo'} ({width}×{height} {fmt}) would take "
                            f"{needed // (1024 * 1024)} MB to decode, more than the "
                            f"{limits.decode_budget_bytes // (1024 * 1024)} MB allowed; send it "
                            "as a JPEG or smaller",
                            field=field,
                        )
                    scale = 2
                    while scale < 8 and needed // (scale * scale) > limits.decode_budget_bytes:
                        scale *= 2
                    image.draft(image.mode, (width // scale, height // scale))
                # Every byte is still decoded (a truncated file is found), at bounded memory.
                with _decode_slots(limits.decodes_at_once):
                    image.load()
                taken, exif_lon, exif_lat = _exif_evidence(image, "Asia/Shanghai")
                if taken is not None and (
                    taken.year < _EARLIEST_PHOTO_YEAR or taken > now + timedelta(days=1)
                ):
                    taken = None  # a camera clock that was never set, or one in the future
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationFailed(
            f"{name or 'the photo'} would decode to more pixels than the "
            f"{limits.max_photo_pixels:,} allowed",
            field=field,
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationFailed(
            f"{name or 'the file'} is not a readable JPEG, PNG or WebP photo", field=field
        ) from exc
    if fmt not in PHOTO_FORMATS:
        raise ValidationFailed(
            f"{name or 'the file'} is a {fmt} image; send JPEG, PNG or WebP", field=field
        )
    content_type, extension = PHOTO_FORMATS[fmt]
    data = image_only(data, fmt)
    return _keep(
        session,
        data,
        "photo",
        content_type,
        extension,
        name,
        directory,
        now,
        uploaded_by,
        width=width,
        height=height,
        taken_at=taken,
        exif_lon=exif_lon,
        exif_lat=exif_lat,
    )


def image_only(data: bytes, fmt: str) -> bytes:
    """The bytes up to the image's own end (JPEG's EOI, PNG's IEND, WebP's RIFF size): what a
    sender appended — HTML, a ZIP — is not kept, so the file cannot pass for another kind.
    A structure this does not follow is kept as it is (the decoder accepted it)."""
    try:
        end = {"JPEG": _jpeg_end, "PNG": _png_end, "WEBP": _webp_end}[fmt](data)
    except (IndexError, KeyError, ValueError):
        return data
    return data[:end] if end else data


def _jpeg_end(data: bytes) -> int:
    pos = 2  # after SOI
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError("not at a marker")
        while data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # SOS: entropy-coded data up to the next real marker
            while True:
                pos = data.index(b"\xff", pos)
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos += 1 if following == 0xFF else 2
                    continue
                break
    raise ValueError("no EOI")


def _png_end(data: bytes) -> int:
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    raise ValueError("no IEND")


def _webp_end(data: bytes) -> int:
    size = int.from_bytes(data[4:8], "little")
    return 8 + size + (size & 1)


def store_voice(
    session: Session,
    data: bytes,
    filename: str | None,
    content_type: str | None,
    *,
    directory: Path,
    now: datetime,
    uploaded_by: int | None = None,
    limits: MediaLimits = MediaLimits(),
    field: str = "voice",
) -> Media:
    name = _clean_name(filename)
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in VOICE_TYPES:
        raise ValidationFailed(
            f"{name or 'the voice note'} has type {kind or 'unknown'}; send one of "
            f"{', '.join(sorted(VOICE_TYPES))}",
            field=field,
        )
    if not data or len(data) > limits.max_voice_bytes:
        raise ValidationFailed(
            f"a voice note must hold 1 byte to {limits.max_voice_bytes // (1024 * 1024)} MB",
            field=field,
        )
    sniffed = sniff_voice(data)
    if sniffed is None:
        raise ValidationFailed(
            f"{name or 'the voice note'} is not a recording: send AMR, MP3, M4A, AAC, WAV, "
            "Ogg or WebM audio",
            field=field,
        )
    # Kept as what the bytes are: a mislabelled but real recording still plays back.
    return _keep(
        session, data, "voice", sniffed, VOICE_TYPES[sniffed], name, directory, now, uploaded_by
    )


def _keep(
    session: Session,
    data: bytes,
    kind: str,
    content_type: str,
    extension: str,
    name: str,
    directory: Path,
    now: datetime,
    uploaded_by: int | None,
    **extra: Any,
) -> Media:
    media_id = "m" + secrets.token_hex(12)
    stored_name = media_id + extension
    _write_file(session, directory, stored_name, data)
    row = Media(
        id=media_id,
        kind=kind,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        original_name=name,
        stored_name=stored_name,
        uploaded_by=uploaded_by,
        created_at=now.astimezone(UTC),
        **extra,
    )
    session.add(row)
    session.flush()
    return row


def get_media(session: Session, media_id: str) -> Media:
    row = session.get(Media, media_id)
    if row is None:
        raise NotFound(f"no media {media_id}")
    return row


def missing_media(session: Session, ids: list[str]) -> list[str]:
    """The ids in the list that are not stored media."""
    if not ids:
        return []
    found = set(session.scalars(select(Media.id).where(Media.id.in_(ids))))
    return [i for i in ids if i not in found]


# Sent with every stored file: never sniffed into another type, never run as a page.
SERVING_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
    "Cache-Control": "private",
}


def media_path(directory: Path, row: Media) -> Path:
    return directory / row.stored_name


# -- storage: files written by a transaction live or die with it ------------------------------
_WRITTEN = "cityloop.media.written"  # session.info: objects written since the last commit
_shared: Storage | None = None
KEY_PREFIX = "media/"


def use(storage: Storage | None) -> None:
    """Keep media in this shared store (S3-compatible, from CITYLOOP_STORAGE_URL) from now on;
    None: in the local media directory each caller names (the default)."""
    global _shared
    _shared = storage


def _place(directory: Path, stored_name: str) -> tuple[Storage, str]:
    if _shared is not None:
        return _shared, KEY_PREFIX + stored_name
    return LocalStorage(directory), stored_name


def _write_file(session: Session, directory: Path, stored_name: str, data: bytes) -> None:
    """The one write of media bytes. The object is the session's until it commits: a
    rollback, or a session closed without commit, removes it. An object store that is down
    raises StorageUnavailable (503), and the request writes nothing."""
    store, key = _place(directory, stored_name)
    store.put(key, data, _CONTENT_TYPES.get(Path(stored_name).suffix, "application/octet-stream"))
    session.info.setdefault(_WRITTEN, []).append((store, key))


_CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def read_media(directory: Path, row: Media) -> bytes:
    store, key = _place(directory, row.stored_name)
    try:
        return store.get(key)
    except KeyError as exc:
        raise NotFound(f"media {row.id} is missing its file") from exc


def media_object(directory: Path, row: Media) -> tuple[Storage, str]:
    """Where a row's bytes are: the store and the key (media/api serves from it)."""
    return _place(directory, row.stored_name)


@event.listens_for(Session, "after_commit")
def _files_kept(session: Session) -> None:
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_transaction_end")
def _files_discarded(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction decides: a savepoint rolled back inside a transaction
    # that commits may leave a file no row names, which the sweep removes.
    if transaction.parent is not None:
        return
    for store, key in session.info.pop(_WRITTEN, ()):
        # A store that is down keeps the object: the sweep removes it once the store is back.
        with contextlib.suppress(StorageUnavailable):
            store.delete(key)


def sweep_orphans(
    session: Session,
    directory: Path,
    *,
    older_than: timedelta = timedelta(hours=1),
    dry_run: bool = False,
) -> list[str]:
    """Remove stored media that no media row names (left by a process killed between writing
    a file and committing its row). Objects younger than `older_than` are left alone: their
    request may still be committing. Returns the names removed (or that would be)."""
    store, prefix = _place(directory, "")
    named = set(session.scalars(select(Media.stored_name)))
    horizon = datetime.now(UTC).timestamp() - older_than.total_seconds()
    removed = []
    for key, modified in store.listing(prefix):
        name = key[len(prefix) :]
        if "/" in name or name in named or modified > horizon:
            continue
        if not dry_run:
            store.delete(key)
        removed.append(name)
    return removed
