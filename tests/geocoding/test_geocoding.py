"""The gazetteer (地理编码): exact, contained and fuzzy names; doorplate numbers never
approximated; unknown places give nothing rather than a guess."""

from __future__ import annotations

import pytest

from cityloop.geocoding.service import Gazetteer, import_points, normalize, read_csv


def _gazetteer(rows):
    admin = {"厦门市": "350200", "思明区": "350203", "湖里区": "350206", "厦门": "350200"}
    prefixes = tuple(sorted(admin, key=len, reverse=True))
    points = [(k, n, normalize(n, prefixes), d, lon, lat) for k, n, d, lon, lat in rows]
    return Gazetteer(points, admin)


def test_exact_contained_fuzzy_and_numbers():
    gazetteer = _gazetteer(
        [
            ("doorplate", "厦禾路1108号", "350203", 118.10, 24.47),
            ("poi", "明发商业广场", "350203", 118.13, 24.49),
            ("poi", "五缘湾湿地公园", "350206", 118.18, 24.52),
        ]
    )
    assert gazetteer.geocode("厦门市思明区厦禾路1108号").name == "厦禾路1108号"
    assert gazetteer.geocode("厦禾路 1108 号").name == "厦禾路1108号"
    assert gazetteer.geocode("厦禾路1106号") is None
    assert gazetteer.geocode("明发商业广场门口").name == "明发商业广场"
    assert gazetteer.geocode("五缘湾湿地公圆").name == "五缘湾湿地公园"  # a typo
    assert gazetteer.geocode("思明区五缘湾湿地公园") is None  # it is in 湖里区
    assert gazetteer.geocode("那边") is None


def test_import_checks_every_row(db_session):
    rows = read_csv("name,kind,lon,lat\n明发商业广场,poi,118.13,24.49\n")
    assert import_points(db_session, rows) == 1
    with pytest.raises(ValueError, match="row 2: lon and lat must be numbers"):
        import_points(db_session, [{"name": "甲", "lon": 1, "lat": 2}, {"name": "乙", "lon": "x"}])
    with pytest.raises(ValueError, match="kind must be one of"):
        import_points(db_session, [{"name": "甲", "kind": "river", "lon": 1, "lat": 2}])
