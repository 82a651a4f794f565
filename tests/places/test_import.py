"""GeoJSON import of regions and unit grids, level by level, with clear refusals
(R-GR-1 unit grids with 15-digit codes, R-GR-2 the region tree above them)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import shapely
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from cityloop.places.service import (
    PlaceIndex,
    children,
    import_geojson,
    import_unit_grids,
    region_path,
)


def feature(geom: shapely.Geometry, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": mapping(geom)}


def fc(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def box(x0: float, x1: float, y0: float = 24.0, y1: float = 24.01) -> shapely.Polygon:
    return shapely.box(x0, y0, x1, y1)


def import_tree(session: Session) -> None:
    import_geojson(session, fc(feature(box(118.0, 118.02), code="350200", name="厦门市")), "city")
    import_geojson(
        session,
        fc(feature(box(118.0, 118.02), code="350203", name="思明区", parent_code="350200")),
        "district",
    )
    import_geojson(
        session,
        fc(feature(box(118.0, 118.02), code="350203011", name="嘉莲街道", parent_code="350203")),
        "street",
    )
    import_geojson(
        session,
        fc(
            feature(
                box(118.0, 118.01), code="350203011003", name="盈翠社区", parent_code="350203011"
            ),
            feature(
                box(118.01, 118.02), code="350203011004", name="莲花北社区", parent_code="350203011"
            ),
        ),
        "community",
    )
    import_geojson(
        session,
        fc(
            feature(
                box(118.0, 118.01),
                code="350203011003R01",
                name="盈翠社区第一网格",
                parent_code="350203011003",
            )
        ),
        "resp_grid",
    )


GRIDS = fc(
    feature(
        box(118.0, 118.005),
        code="350203011003001",
        community_code="350203011003",
        resp_grid_code="350203011003R01",
    ),
    feature(box(118.005, 118.01), code="350203011003002", community_code="350203011003"),
)


def test_a_tree_imported_level_by_level_is_located(db_session: Session) -> None:
    """R-GR-1, R-GR-2."""
    import_tree(db_session)
    assert import_unit_grids(db_session, GRIDS) == 2
    assert [r.code for r in children(db_session, "350203011")] == [
        "350203011003",
        "350203011004",
    ]
    path = region_path(db_session, "350203011003R01")
    assert [r.level for r in path] == ["city", "district", "street", "community", "resp_grid"]
    assert path[-2].area_km2 == pytest.approx(1.01 * 1.11, rel=0.02)  # ≈1.0 km × 1.1 km
    loc = PlaceIndex.load(db_session).locate(118.0025, 24.005)
    assert loc is not None
    assert (loc.unit_grid, loc.resp_grid, loc.community_name) == (
        "350203011003001",
        "350203011003R01",
        "盈翠社区",
    )


GOOD = {
    "street": {"code": "350203099", "name": "好街道", "parent_code": "350203"},
    "community": {"code": "350203011099", "name": "好社区", "parent_code": "350203011"},
    "resp_grid": {"code": "350203011003R09", "name": "好网格", "parent_code": "350203011003"},
}
BAD_REGIONS = [
    ("street", {"code": "35020301"}, "field 'code': expected 9 digits"),
    ("street", {"code": "35020301a"}, "field 'code': expected 9 digits"),
    ("street", {"code": 350203012}, "field 'code': expected a string"),
    ("street", {"parent_code": "350206"}, "field 'code': 350203098 does not start with"),
    ("street", {"parent_code": "3502"}, "field 'parent_code': expected 6 digits"),
    ("street", {"name": " "}, "field 'name': missing or empty"),
    ("street", {"name_en": 7}, "field 'name_en': expected a string"),
    ("community", {"code": "35020301100"}, "field 'code': expected 12 digits"),
    ("community", {"parent_code": "350203"}, "field 'parent_code': expected 9 digits"),
    ("resp_grid", {"code": "350203011003R1"}, "field 'code': expected 12 digits [+] 'R'"),
    ("resp_grid", {"code": "350203011004R01"}, "field 'code': 350203011004R01 does not start"),
]


@pytest.mark.parametrize(("level", "change", "message"), BAD_REGIONS)
def test_bad_region_features_name_their_index_and_field(
    db_session: Session, level: str, change: dict[str, Any], message: str
) -> None:
    """R-GR-2: codes compose down the tree (6 + 3 + 3 digits, then R + 2)."""
    import_tree(db_session)
    good = feature(box(118.0, 118.001), **GOOD[level])
    bad = copy.deepcopy(good)
    bad["properties"]["code"] = bad["properties"]["code"][:-1] + "8"
    bad["properties"].update(change)
    with pytest.raises(ValueError, match=f"feature 1: {message}"):
        import_geojson(db_session, fc(good, bad), level)


def test_bad_geometry_and_missing_parents_are_refused(db_session: Session) -> None:
    import_tree(db_session)
    bowtie = shapely.Polygon([(118.0, 24.0), (118.01, 24.01), (118.01, 24.0), (118.0, 24.01)])
    cases = [
        (bowtie, "350203011", "field 'geometry': invalid polygon"),
        (shapely.Point(118.0, 24.0), "350203011", "field 'geometry': expected a Polygon"),
        (box(118.0, 118.01), "350203012", "field 'parent_code': 350203012 does not exist"),
        (box(118.0, 118.01), "350203", "field 'parent_code': expected 9 digits"),
    ]
    for geom, parent, message in cases:
        code = parent + "005" if len(parent) == 9 else "350203011005"
        bad = feature(geom, code=code, name="新社区", parent_code=parent)
        with pytest.raises(ValueError, match=f"feature 0: {message}"):
            import_geojson(db_session, fc(bad), "community")
    with pytest.raises(ValueError, match="feature 0: field 'code': 350203011003 already exists"):
        import_geojson(
            db_session,
            fc(
                feature(
                    box(118.0, 118.01), code="350203011003", name="盈翠", parent_code="350203011"
                )
            ),
            "community",
        )
    with pytest.raises(ValueError, match="unknown level"):
        import_geojson(db_session, fc(), "province")
    with pytest.raises(ValueError, match="FeatureCollection"):
        import_geojson(db_session, {"type": "Feature"}, "street")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": "35020301100300"}, "field 'code': expected 15 digits"),
        ({"code": "350203011004001"}, "field 'code': 350203011004001 does not start with"),
        (
            {"community_code": "350203011009", "code": "350203011009001"},
            "field 'community_code': 350203011009 is not an existing community",
        ),
        ({"resp_grid_code": "350203011004R01"}, "field 'resp_grid_code': 350203011004R01 does not"),
        (
            {"resp_grid_code": "350203011003R02"},
            "field 'resp_grid_code': 350203011003R02 is not an existing responsibility grid",
        ),
        ({"code": "350203011003001"}, "field 'code': 350203011003001 repeats feature 0"),
    ],
)
def test_bad_unit_grids_name_their_index_and_field(
    db_session: Session, change: dict[str, Any], message: str
) -> None:
    """R-GR-1: a unit grid code is its community's 12 digits plus a 3-digit sequence."""
    import_tree(db_session)
    good = feature(box(118.0, 118.005), code="350203011003001", community_code="350203011003")
    bad = copy.deepcopy(good)
    bad["properties"].update({"code": "350203011003002", **change})
    with pytest.raises(ValueError, match=f"feature 1: {message}"):
        import_unit_grids(db_session, fc(good, bad))
