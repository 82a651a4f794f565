"""Issue 23 item 4 (R-IN-1, RELIABILITY.md "a lost answer is safe to send again"): an
Idempotency-Key belongs to its sender and to one body. Another sender's key makes its own
report; the same key with another body is a 422 naming the header (as the IETF
Idempotency-Key draft says), never the first report's answer; a true replay answers what the
first answered — 201, the same case — and says it is a replay (`Idempotent-Replayed: true`)."""

from __future__ import annotations

from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import jpeg_bytes

REPLAYED = "Idempotent-Replayed"


def _body(city_places, **changes):
    lon, lat = point_in(city_places, YINGCUI)
    return {
        "source": "inspector",
        "class_code": "06010",
        "description": "暴露垃圾，路口东侧",
        "lon": lon,
        "lat": lat,
        **changes,
    }


def test_a_true_replay_answers_the_same_and_says_so(client, auth, city_places):
    headers = {**auth("inspector"), "Idempotency-Key": "scope-1"}
    first = client.post("/api/v1/reports", json=_body(city_places), headers=headers)
    again = client.post("/api/v1/reports", json=_body(city_places), headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"


def test_another_senders_key_is_its_own(client, auth, city_places):
    key = {"Idempotency-Key": "scope-2"}
    mine = client.post(
        "/api/v1/reports", json=_body(city_places), headers={**auth("inspector"), **key}
    )
    theirs = client.post(
        "/api/v1/reports",
        json=_body(city_places, class_code="06036", description="人行道乱堆杂物"),
        headers={**auth("admin"), **key},
    )
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert theirs.json()["ticket"] != mine.json()["ticket"]
    assert REPLAYED not in theirs.headers


def test_the_same_key_with_another_body_is_refused_naming_the_header(client, auth, city_places):
    headers = {**auth("inspector"), "Idempotency-Key": "scope-3"}
    first = client.post("/api/v1/reports", json=_body(city_places), headers=headers)
    assert first.status_code == 201
    other = client.post(
        "/api/v1/reports", json=_body(city_places, class_code="06036"), headers=headers
    )
    assert other.status_code == 422, other.text
    assert other.json()["field"] == "Idempotency-Key"
    assert first.json()["ticket"] not in other.text


def test_anonymous_keys_cannot_claim_anothers_report(client, city_places):
    key = {"Idempotency-Key": "public-1"}
    first = client.post("/api/v1/reports", json=_body(city_places, source="public"), headers=key)
    assert first.status_code == 201
    claim = client.post(
        "/api/v1/reports",
        json=_body(city_places, source="public", description="另一件事：路灯不亮"),
        headers=key,
    )
    assert claim.status_code == 422, claim.text
    assert claim.json()["field"] == "Idempotency-Key"
    assert first.json()["ticket"] not in claim.text


def _photo(color: str):
    return ("photos", (f"{color}.jpg", jpeg_bytes(color), "image/jpeg"))


def test_multipart_reports_fingerprint_their_photos(client, auth, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    form = {"class_code": "06010", "description": "暴露垃圾", "lon": str(lon), "lat": str(lat)}
    headers = {**auth("inspector"), "Idempotency-Key": "app-1"}
    first = client.post(
        "/api/v1/inspector/reports", data=form, files=[_photo("red")], headers=headers
    )
    again = client.post(
        "/api/v1/inspector/reports", data=form, files=[_photo("red")], headers=headers
    )
    other = client.post(
        "/api/v1/inspector/reports", data=form, files=[_photo("blue")], headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers[REPLAYED] == "true"
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    # Another inspector's phone may count its keys the same way.
    huli = client.post(
        "/api/v1/inspector/reports",
        data=form,
        files=[_photo("red")],
        headers={**auth("admin"), "Idempotency-Key": "app-1"},
    )
    assert huli.status_code == 201 and huli.json()["id"] != first.json()["id"]

    citizen = {"description": "路灯不亮", "phone": "13800000001", "lon": str(lon), "lat": str(lat)}
    key = {"Idempotency-Key": "h5-1"}
    one = client.post("/api/v1/citizen/reports", data=citizen, files=[_photo("red")], headers=key)
    two = client.post("/api/v1/citizen/reports", data=citizen, files=[_photo("red")], headers=key)
    claim = client.post(
        "/api/v1/citizen/reports",
        data={**citizen, "phone": "13900000002"},
        files=[_photo("red")],
        headers=key,
    )
    assert one.status_code == two.status_code == 201, two.text
    assert two.json()["id"] == one.json()["id"] and two.headers[REPLAYED] == "true"
    assert claim.status_code == 422 and claim.json()["field"] == "Idempotency-Key"
