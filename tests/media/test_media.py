"""Photos are evidence (R-IN-2, R-HD-1, R-CL-2): only real images within limits are kept,
names never become paths, and EXIF time and GPS are kept as evidence."""

from __future__ import annotations

import io

from PIL import Image

from tests.conftest import jpeg_bytes


def _post(client, auth, name, data, content_type="image/jpeg"):
    return client.post(
        "/api/v1/media", files={"file": (name, data, content_type)}, headers=auth("inspector")
    )


def test_a_photo_is_kept_and_served_back(client, auth):
    data = jpeg_bytes("green", (320, 240))
    created = _post(client, auth, "井盖.jpg", data)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["width"], body["height"], body["content_type"]) == (320, 240, "image/jpeg")
    # Its uploader fetches it back (others once a case they see cites it: test_media_serving).
    fetched = client.get(f"/api/v1/media/{body['id']}", headers=auth("inspector"))
    assert fetched.status_code == 200 and fetched.content == data
    assert client.get(f"/api/v1/media/{body['id']}").status_code == 401
    assert client.get("/api/v1/media/m-nothing", headers=auth("operator")).status_code == 404


def test_bad_files_are_refused_with_a_clear_message(client, auth):
    text_as_jpeg = _post(client, auth, "photo.jpg", b"this is not an image at all")
    assert text_as_jpeg.status_code == 422
    assert text_as_jpeg.json()["field"] == "file"
    assert "not a readable JPEG, PNG or WebP" in text_as_jpeg.json()["detail"]

    empty = _post(client, auth, "empty.jpg", b"")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]

    gif = io.BytesIO()
    Image.new("RGB", (10, 10), "red").save(gif, "GIF")
    assert "GIF" in _post(client, auth, "x.jpg", gif.getvalue()).json()["detail"]

    # A decompression bomb: a tiny file that would decode to 400 million pixels.
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 1_000_000
    refused = _post(client, auth, "bomb.png", bomb.getvalue(), "image/png")
    assert refused.status_code == 422 and "pixels" in refused.json()["detail"]

    big = _post(client, auth, "big.jpg", b"\xff" * (11 * 1024 * 1024))
    assert big.status_code == 422 and "at most 10 MB" in big.json()["detail"]


def test_a_path_in_the_name_never_becomes_a_path(client, auth):
    created = _post(client, auth, "../../../etc/passwd.jpg", jpeg_bytes())
    assert created.status_code == 201
    assert created.json()["original_name"] == "passwd.jpg"
    assert "/" not in created.json()["id"]


def test_exif_time_and_gps_are_kept_as_evidence(client, auth):
    image = Image.new("RGB", (64, 48), "blue")
    exif = Image.Exif()
    exif[0x0132] = "2026:08:27 16:05:11"
    exif[0x8825] = {1: "N", 2: (24.0, 29.0, 30.0), 3: "E", 4: (118.0, 11.0, 24.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    body = _post(client, auth, "gps.jpg", buffer.getvalue()).json()
    assert body["taken_at"].startswith("2026-08-27T16:05:11+08:00") or body["taken_at"].startswith(
        "2026-08-27T08:05:11"
    )
    assert abs(body["exif_lat"] - 24.491666) < 1e-4 and abs(body["exif_lon"] - 118.19) < 1e-4


def test_oversized_requests_are_refused_before_they_are_read(client, auth):
    response = client.post(
        "/api/v1/media",
        content=b"x" * 10,
        headers={
            **auth("inspector"),
            "Content-Length": str(200 * 1024 * 1024),
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    assert response.status_code == 413 and response.json()["field"] == "body"


def test_an_action_cannot_cite_a_photo_that_was_never_uploaded(client, auth, city_places):
    from tests.cases.helpers import YINGCUI, point_in

    lon, lat = point_in(city_places, YINGCUI)
    refused = client.post(
        "/api/v1/reports",
        json={
            "source": "public",
            "class_code": "06010",
            "description": "暴露垃圾",
            "lon": lon,
            "lat": lat,
            "photos": ["m000000000000000000000000"],
        },
    )
    assert refused.status_code == 422 and refused.json()["field"] == "photos"
