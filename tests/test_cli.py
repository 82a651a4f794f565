"""The command line: migrate, import places from GeoJSON, sweep once (R-GR-1)."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.cli import app
from cityloop.db import make_engine
from cityloop.places.models import Region

SQUARE = [[[118.0, 24.0], [118.1, 24.0], [118.1, 24.1], [118.0, 24.1], [118.0, 24.0]]]


def _collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def _feature(code, name, parent):
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name, "parent_code": parent},
        "geometry": {"type": "Polygon", "coordinates": SQUARE},
    }


def test_migrate_import_and_worker_on_a_new_city(tmp_path):
    url = f"sqlite:///{tmp_path / 'new-city.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["migrate", "--db", url]).exit_code == 0
    city = tmp_path / "city.geojson"
    city.write_text(json.dumps(_collection(_feature("999900", "新城市", None))), encoding="utf-8")
    ok = runner.invoke(app, ["import-places", str(city), "--level", "city", "--db", url])
    assert ok.exit_code == 0, ok.output
    assert "imported 1 city" in ok.output
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(_collection(_feature("99990", "短码区", "999900"))), encoding="utf-8")
    refused = runner.invoke(app, ["import-places", str(bad), "--level", "district", "--db", url])
    assert refused.exit_code == 2 and "code" in refused.output
    missing = runner.invoke(
        app, ["import-places", str(tmp_path / "none.geojson"), "--level", "district", "--db", url]
    )
    assert missing.exit_code == 2
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Region)) == 1
    engine.dispose()
    swept = runner.invoke(app, ["worker", "--once", "--db", url])
    assert swept.exit_code == 0 and "swept 0" in swept.output
