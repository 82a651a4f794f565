"""Importing the city's geography through the API (R-GR-1): unit grids from GeoJSON and the
gazetteer's address points from CSV, all or nothing; a bad file names the feature or row and
field at fault; only an administrator imports."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.geocoding.models import AddressPoint
from cityloop.places.models import UnitGrid

YINGCUI = "350203011003"


def test_unit_grids_and_address_points_are_imported_from_files(
    client: TestClient, auth: Any, city_session: Session
) -> None:
    admin = auth("admin")
    existing = city_session.scalar(select(UnitGrid).where(UnitGrid.community_code == YINGCUI))
    assert existing is not None
    feature = {
        "type": "Feature",
        "properties": {"code": YINGCUI + "991", "community_code": YINGCUI},
        "geometry": json.loads(existing.geometry),
    }

    def send(collection: Any, level: str = "unit_grid", who: str = "admin") -> Any:
        return client.post(
            "/api/v1/places/import",
            data={"level": level},
            files={"file": ("grids.geojson", json.dumps(collection).encode(), "application/json")},
            headers=auth(who),
        )

    bad_community = {
        **feature,
        "properties": {"code": "350203011004992", "community_code": "350203011004"},
    }
    wrong = send({"type": "FeatureCollection", "features": [feature, bad_community, {**feature}]})
    assert wrong.status_code == 422 and wrong.json()["field"] == "file"
    assert "feature 2" in wrong.json()["detail"] and "code" in wrong.json()["detail"]
    assert city_session.get(UnitGrid, YINGCUI + "991") is None  # nothing of the batch
    assert (
        send({"type": "FeatureCollection", "features": [feature]}, level="planet").json()["field"]
        == "level"
    )
    assert (
        send({"type": "FeatureCollection", "features": [feature]}, who="operator").status_code
        == 403
    )

    done = send({"type": "FeatureCollection", "features": [feature]})
    assert done.status_code == 201, done.text
    assert done.json()["imported"] == 1 and done.json()["counts"]["unit_grid"] > 1
    assert city_session.get(UnitGrid, YINGCUI + "991") is not None

    rows = "name,kind,lon,lat\n盈翠里99号,doorplate,118.13,24.49\n,poi,118.1,24.4\n"
    refused = client.post(
        "/api/v1/address-points/import",
        files={"file": ("points.csv", rows.encode(), "text/csv")},
        headers=admin,
    )
    assert refused.status_code == 422 and "row 2" in refused.json()["detail"]
    points = client.post(
        "/api/v1/address-points/import",
        files={
            "file": (
                "points.csv",
                rows.splitlines()[0].encode() + b"\n" + rows.splitlines()[1].encode(),
                "text/csv",
            )
        },
        headers=admin,
    )
    assert points.status_code == 201, points.text
    assert points.json()["imported"] == 1
    assert (
        city_session.scalar(select(AddressPoint).where(AddressPoint.name == "盈翠里99号"))
        is not None
    )
