"""Photos on shared object storage (issue 20, part 4): with CITYLOOP_STORAGE_URL naming an
S3-compatible store, uploads land in the bucket and are served from it; with the store down,
an upload or a citizen's report with a photo answers 503 with Retry-After and writes no media
row and no case — the client sends it again when the store is back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.app import create_app
from cityloop.cases.models import Case
from cityloop.media import service as media_service
from cityloop.media.models import Media
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TEST_SETTINGS, _bound_session_factory, jpeg_bytes
from tests.storage.conftest import free_port

BUCKET = "cityloop-media-test"


def _s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )


@pytest.fixture
def s3_app(
    city_connection: Any, city_places: Any, clock: Any
) -> Iterator[tuple[TestClient, Any, str]]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    settings = TEST_SETTINGS.model_copy(
        update={
            "storage_url": f"s3://{BUCKET}/city?endpoint={endpoint}&create=1",
            "s3_access_key": "test",
            "s3_secret_key": "test",
        }
    )
    app = create_app(settings, session_factory=_bound_session_factory(city_connection), clock=clock)
    app.state.places = lambda: city_places
    try:
        with TestClient(app) as client:
            yield client, server, endpoint
    finally:
        media_service.use(None)  # the next apps keep media in their directory again
        server.stop()


def test_a_photo_lands_in_the_bucket_and_is_served_from_it(
    s3_app: tuple[TestClient, Any, str], auth: Any
) -> None:
    client, _, endpoint = s3_app
    photo = jpeg_bytes("red", (120, 90))
    made = client.post(
        "/api/v1/media", files={"file": ("p.jpg", photo, "image/jpeg")}, headers=auth("admin")
    )
    assert made.status_code == 201, made.text
    media_id = made.json()["id"]
    keys = [o["Key"] for o in _s3_client(endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.startswith("city/media/" + media_id) for k in keys), keys
    served = client.get(f"/api/v1/media/{media_id}", headers=auth("admin"))
    assert served.status_code == 200
    assert served.content == photo
    assert served.headers["x-content-type-options"] == "nosniff"


def test_with_the_store_down_nothing_is_written_and_the_client_is_told_to_retry(
    s3_app: tuple[TestClient, Any, str], auth: Any, city_session: Session, city_places: Any
) -> None:
    client, server, _ = s3_app
    server.stop()
    media_before = city_session.scalar(select(func.count()).select_from(Media))
    cases_before = city_session.scalar(select(func.count()).select_from(Case))

    upload = client.post(
        "/api/v1/media",
        files={"file": ("p.jpg", jpeg_bytes(), "image/jpeg")},
        headers=auth("admin"),
    )
    assert upload.status_code == 503, upload.text
    assert upload.headers["retry-after"] == "5"
    assert upload.json()["code"] == "unavailable"

    lon, lat = point_in(city_places, YINGCUI)
    report = client.post(
        "/api/v1/citizen/reports",
        data={
            "description": "路边垃圾堆满了",
            "phone": "13912340009",
            "lon": str(lon),
            "lat": str(lat),
            "class_code": "06010",
        },
        files=[("photos", ("p.jpg", jpeg_bytes("blue"), "image/jpeg"))],
    )
    assert report.status_code == 503, report.text
    city_session.expire_all()
    assert city_session.scalar(select(func.count()).select_from(Media)) == media_before
    assert city_session.scalar(select(func.count()).select_from(Case)) == cases_before
