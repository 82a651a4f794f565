"""Issue 23 item 2 (R-IN-3 citizens' photos, no login needed): a photo is decoded within a
memory budget — a JPEG over it is decoded scaled down (its stored bytes and stated size stay
the original's), a PNG or WebP over it is refused before it is decoded — and anonymous uploads
from one client address are held to an hourly budget counted in the database, so a changed
phone field does not reset it and every server process sees the same count.
Peak memory under 24 concurrent bombs: bench/bench_bomb.py (BENCHMARKS.md)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cityloop.app import create_app
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TEST_SETTINGS, _bound_session_factory, jpeg_bytes


def png_bomb(width: int = 6320, height: int = 6320) -> bytes:
    """An RGBA PNG of zeros: ~170 KB that decode to width × height × 4 bytes (issue 23)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    packer = zlib.compressobj(9)
    row = b"\x00" * (width * 4 + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _citizen(client: TestClient, city_places, photos, phone="13800000001"):
    lon, lat = point_in(city_places, YINGCUI)
    form = {"description": "路面破损", "phone": phone, "lon": str(lon), "lat": str(lat)}
    files = [("photos", (f"p{i}.png", data, "image/png")) for i, data in enumerate(photos)]
    return client.post("/api/v1/citizen/reports", data=form, files=files or None)


def test_a_png_bomb_under_the_pixel_cap_is_refused_before_decoding(client, city_places):
    bomb = png_bomb()
    assert len(bomb) < 400_000
    refused = _citizen(client, city_places, [bomb])
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["field"] == "photos.0" and "MB" in body["detail"], body


def test_a_large_jpeg_is_decoded_scaled_and_kept_whole(client, auth):
    big = io.BytesIO()
    Image.new("RGB", (6000, 4000), "olive").save(big, "JPEG", quality=70)
    response = client.post(
        "/api/v1/media",
        files={"file": ("big.jpg", big.getvalue(), "image/jpeg")},
        headers=auth("inspector"),
    )
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (6000, 4000)


@pytest.fixture
def two_processes(city_connection, city_places, clock):
    """Two app instances on one database, as two server workers are, from one address."""
    settings = TEST_SETTINGS.model_copy(
        update={"anonymous_reports_per_hour": 3, "anonymous_megapixels_per_hour": 4}
    )
    clients = []
    for _ in range(2):
        app = create_app(
            settings, session_factory=_bound_session_factory(city_connection), clock=clock
        )
        app.state.places = lambda: city_places
        clients.append(TestClient(app, client=("10.7.7.7", 40000)))
    return clients


def test_the_anonymous_budget_holds_across_processes_and_phones(two_processes, city_places):
    first, second = two_processes
    answers = [
        _citizen(client, city_places, [], phone=f"1380000000{n}")
        for n, client in enumerate((first, second, first))
    ]
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    refused = _citizen(second, city_places, [], phone="13900000009")
    assert refused.status_code == 429, refused.text
    assert refused.json()["field"] == "client" and int(refused.headers["Retry-After"]) > 0


def test_the_anonymous_pixel_budget_counts_photos(two_processes, city_places):
    first, second = two_processes
    photo = jpeg_bytes("red", (1600, 1200))  # 1.92 MP: two fit in 4, a third does not
    assert _citizen(first, city_places, [photo]).status_code == 201
    assert _citizen(second, city_places, [photo], phone="13900000001").status_code == 201
    refused = _citizen(first, city_places, [photo], phone="13900000002")
    assert refused.status_code == 429, refused.text
    assert refused.json()["field"] == "photos"
