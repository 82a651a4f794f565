"""Issue 23 item 8 (R-IN-2 evidence photos): a photo is served only to whoever may see a case
or record that cites it (or uploaded it); bytes appended after the image (HTML, a ZIP) are not
kept; media answers carry `X-Content-Type-Options: nosniff` and a Content-Security-Policy that
runs nothing — in the API and in the console."""

from __future__ import annotations

from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import jpeg_bytes

TAIL = b"<html><script>alert(document.cookie)</script></html>PK\x03\x04zipzip"


def _inspector_report(client, auth, city_places, photo: bytes) -> dict:
    lon, lat = point_in(city_places, YINGCUI)
    response = client.post(
        "/api/v1/inspector/reports",
        data={"class_code": "06010", "description": "暴露垃圾", "lon": str(lon), "lat": str(lat)},
        files=[("photos", ("p.jpg", photo, "image/jpeg"))],
        headers=auth("inspector"),
    )
    assert response.status_code == 201, response.text
    case = client.get(f"/api/v1/cases/{response.json()['id']}", headers=auth("admin")).json()
    return {"case": case, "photo": case["timeline"][0]["photos"][0]}


def test_trailing_bytes_are_not_kept_and_media_is_served_inert(client, auth, city_places):
    clean = jpeg_bytes("purple")
    made = _inspector_report(client, auth, city_places, clean + TAIL)
    response = client.get(f"/api/v1/media/{made['photo']}", headers=auth("admin"))
    assert response.status_code == 200
    assert response.content == clean
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "sandbox" in response.headers["content-security-policy"]


def test_a_photo_is_served_only_to_who_may_see_a_case_citing_it(client, auth, city_places):
    made = _inspector_report(client, auth, city_places, jpeg_bytes("teal"))
    path = f"/api/v1/media/{made['photo']}"
    assert client.get(path, headers=auth("inspector")).status_code == 200  # the uploader
    assert client.get(path, headers=auth("operator")).status_code == 200  # the centre
    # A handler of another district sees neither the case nor its photo.
    assert (
        client.get(f"/api/v1/cases/{made['case']['id']}", headers=auth("handler_huli")).status_code
        == 404
    )
    refused = client.get(path, headers=auth("handler_huli"))
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "not_found"
    # A photo nobody cites is its uploader's alone.
    lone = client.post(
        "/api/v1/media",
        files={"file": ("x.jpg", jpeg_bytes("navy"), "image/jpeg")},
        headers=auth("inspector"),
    ).json()["id"]
    assert client.get(f"/api/v1/media/{lone}", headers=auth("inspector")).status_code == 200
    assert client.get(f"/api/v1/media/{lone}", headers=auth("handler")).status_code == 404
