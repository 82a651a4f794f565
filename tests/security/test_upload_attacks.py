"""Hostile files sent as evidence (R-IN-2, R-IN-3, R-IN-7, R-HD-1: photos and voice notes
from the inspector app, citizens and cameras): each is refused with a 4xx naming the field,
and no case, no media row is written. Names never become paths; EXIF that makes no sense is
not kept as evidence."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import func, select

from cityloop.cases.models import Case
from cityloop.media.models import Media
from cityloop.media.service import sniff_voice
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import jpeg_bytes

SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>fetch('/api/v1/me').then(r=>r.text()).then(alert)</script></svg>"
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_text_bomb() -> bytes:
    """A 1×1 PNG whose compressed text chunk inflates to 4 MB (Pillow stops at 1 MB)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    png = buffer.getvalue()
    bomb = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * (4 << 20), 9))
    return png[:33] + bomb + png[33:]  # after the signature and IHDR


def _pixel_bomb() -> bytes:
    """A PNG that says it is 20000×20000 pixels, in a hundred bytes."""
    header = struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 2501 * 8)  # a few rows; the header is what counts
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_header_bomb() -> bytes:
    """A small JPEG whose frame header claims 65000×65000 pixels."""
    data = bytearray(jpeg_bytes(size=(16, 16)))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 65000, 65000)
    return bytes(data)


def _truncated_jpeg() -> bytes:
    data = jpeg_bytes("orange", (640, 480))
    return data[: len(data) // 2]


# (name, bytes, declared type, the words the refusal must hold)
HOSTILE_PHOTOS = [
    ("text.jpg", b"just some text pretending to be a photo", "image/jpeg", "not a readable"),
    ("svg.jpg", SVG, "image/svg+xml", "not a readable"),
    ("bomb.png", _pixel_bomb(), "image/png", "pixels"),
    ("header-bomb.jpg", _jpeg_header_bomb(), "image/jpeg", "pixels"),
    ("text-bomb.png", _png_text_bomb(), "image/png", "not a readable"),
    ("truncated.jpg", _truncated_jpeg(), "image/jpeg", "not a readable"),
    ("big.jpg", jpeg_bytes()[:20] + b"\x00" * (11 * 1024 * 1024), "image/jpeg", "at most 10 MB"),
    ("empty.jpg", b"", "image/jpeg", "empty"),
]
IDS = [name for name, *_ in HOSTILE_PHOTOS]


def _counts(session) -> tuple[int, int]:
    session.expire_all()
    return (
        session.scalar(select(func.count()).select_from(Case)) or 0,
        session.scalar(select(func.count()).select_from(Media)) or 0,
    )


@pytest.mark.parametrize(("name", "data", "content_type", "words"), HOSTILE_PHOTOS, ids=IDS)
def test_hostile_photos_are_refused_everywhere_and_leave_nothing(
    at, auth, city_places, city_session, name, data, content_type, words
):
    # Its own address: the citizens' per-address hourly limit is the process's, not the test's.
    client = at("10.20.0.1")
    lon, lat = point_in(city_places, YINGCUI)
    before = _counts(city_session)
    good = ("photos", ("ok.jpg", jpeg_bytes(), "image/jpeg"))
    bad = ("photos", (name, data, content_type))

    inspector = client.post(
        "/api/v1/inspector/reports",
        data={"class_code": "06010", "description": "暴露垃圾", "lon": lon, "lat": lat},
        files=[good, bad],
        headers=auth("inspector"),
    )
    citizen = client.post(
        "/api/v1/citizen/reports",
        data={"description": "暴露垃圾", "phone": "13900001111", "lon": lon, "lat": lat},
        files=[bad],
    )
    media = client.post(
        "/api/v1/media", files={"file": (name, data, content_type)}, headers=auth("inspector")
    )
    camera = client.post(
        "/api/v1/detections",
        data={
            "camera": "SM-JL-0002",
            "kind": "street_vending",
            "confidence": "0.93",
            "detected_at": "2026-08-27T15:58:05+08:00",
        },
        files={"snapshot": (name, data, content_type)},
        headers={"X-Api-Key": "demo-camera-key"},
    )
    for response, field in (
        (inspector, "photos.1"),
        (citizen, "photos.0"),
        (media, "file"),
        (camera, "snapshot"),
    ):
        assert response.status_code == 422, (field, response.text)
        body = response.json()
        assert body["field"] == field and words in body["detail"], body
    assert _counts(city_session) == before


def test_an_oversized_request_is_refused_before_it_is_read(client, auth):
    response = client.post(
        "/api/v1/inspector/reports",
        content=b"--x--\r\n",
        headers={
            **auth("inspector"),
            "Content-Length": str(101 * 1024 * 1024),
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    assert response.status_code == 413 and response.json()["field"] == "body"


HOSTILE_NAMES = [
    "../../etc/passwd.jpg",
    "..\\..\\windows\\win.ini.jpg",
    "/etc/passwd.jpg",
    "a\x00b.jpg",
    "gpj.exe\u202e.jpg",
    "x" * 500 + ".jpg",
]


def test_a_clients_file_name_never_becomes_a_path(client, auth, city_session):
    for filename in HOSTILE_NAMES:
        created = client.post(
            "/api/v1/media",
            files={"file": (filename, jpeg_bytes(), "image/jpeg")},
            headers=auth("inspector"),
        )
        assert created.status_code == 201, (filename, created.text)
        body = created.json()
        row = city_session.get(Media, body["id"])
        assert row is not None and row.stored_name == f"{body['id']}.jpg"
        shown = body["original_name"]
        assert "/" not in shown and "\\" not in shown and not shown.startswith(".."), shown
        assert "\x00" not in shown and "\u202e" not in shown and len(shown) <= 120


def _with_exif(tags: dict[int, object]) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


ODD_EXIF = {
    "year 1 (a clock never set; it overflowed into a 500)": {0x0132: "0001:01:01 00:00:00"},
    "a clock in the future": {0x0132: "2099:12:31 23:59:59"},
    "no such day": {0x0132: "2026:13:45 99:99:99"},
    "NUL time": {0x0132: "\x00\x00\x00\x00"},
    "latitude 1e9": {0x8825: {1: "N", 2: (1e9, 0.0, 0.0), 3: "E", 4: (118.0, 0.0, 0.0)}},
    "two parts": {0x8825: {1: "N", 2: (24.0, 1.0), 3: "E", 4: (118.0, 1.0)}},
    "0/0": {0x8825: {1: "N", 2: (IFDRational(0, 0), 0.0, 0.0), 3: "E", 4: (118.0, 0.0, 0.0)}},
}


def test_exif_that_makes_no_sense_is_not_kept_as_evidence(client, auth):
    for oddity, tags in ODD_EXIF.items():
        created = client.post(
            "/api/v1/media",
            files={"file": ("odd.jpg", _with_exif(tags), "image/jpeg")},
            headers=auth("inspector"),
        )
        assert created.status_code == 201, (oddity, created.text)
        body = created.json()
        kept = (body["taken_at"], body["exif_lat"], body["exif_lon"])
        assert kept == (None, None, None), (oddity, kept)


def test_a_sensible_exif_time_is_kept(client, auth):
    data = _with_exif({0x0132: "2026:08:27 15:30:00"})
    body = client.post(
        "/api/v1/media", files={"file": ("ok.jpg", data, "image/jpeg")}, headers=auth("inspector")
    ).json()
    assert datetime.fromisoformat(body["taken_at"]).year == 2026


NOT_AUDIO = [
    ("note.amr", b"this is a text file, not a recording", "audio/amr"),
    ("note.mp3", jpeg_bytes(), "audio/mpeg"),
    ("note.m4a", b"<html><script>alert(1)</script></html>", "audio/mp4"),
    ("note.webm", b"\x00" * 512, "audio/webm"),
]


@pytest.mark.parametrize(
    ("name", "data", "content_type"), NOT_AUDIO, ids=[n for n, *_ in NOT_AUDIO]
)
def test_a_voice_note_that_is_not_audio_is_refused(
    client, auth, city_places, city_session, name, data, content_type
):
    lon, lat = point_in(city_places, YINGCUI)
    before = _counts(city_session)
    report = client.post(
        "/api/v1/inspector/reports",
        data={"class_code": "06010", "description": "暴露垃圾", "lon": lon, "lat": lat},
        files=[
            ("photos", ("ok.jpg", jpeg_bytes(), "image/jpeg")),
            ("voice", (name, data, content_type)),
        ],
        headers=auth("inspector"),
    )
    assert report.status_code == 422, report.text
    assert report.json()["field"] == "voice" and "not a recording" in report.json()["detail"]
    media = client.post(
        "/api/v1/media", files={"file": (name, data, content_type)}, headers=auth("inspector")
    )
    assert media.status_code == 422 and media.json()["field"] == "file"
    assert _counts(city_session) == before


def test_real_recordings_are_recognised_whatever_they_are_labelled():
    wav = io.BytesIO()
    import wave

    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    assert sniff_voice(wav.getvalue()) == "audio/wav"
    assert sniff_voice(b"#!AMR\n" + b"\x00" * 32) == "audio/amr"
    assert sniff_voice(b"OggS\x00\x02" + b"\x00" * 32) == "audio/ogg"
    assert sniff_voice(b"\x1a\x45\xdf\xa3" + b"\x00" * 32) == "audio/webm"
    assert sniff_voice(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 32) == "audio/mp4"
    assert sniff_voice(b"\x00\x00\x00\x20ftypheic" + b"\x00" * 32) is None  # a photo
    assert sniff_voice(b"ID3\x04\x00" + b"\x00" * 32) == "audio/mpeg"
    assert sniff_voice(b"\xff\xfb\x90\x00" + b"\x00" * 32) == "audio/mpeg"
    assert sniff_voice(b"\xff\xf1\x50\x80" + b"\x00" * 32) == "audio/aac"
    assert sniff_voice(jpeg_bytes()) is None
