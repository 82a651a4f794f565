"""The demo city Xiamen, built into a real database (SQLite and PostgreSQL).

R-GR-1: ≈100 m unit grids cover 思明区 and 湖里区 completely, with 15-digit codes.
R-GR-2: district → street → community → responsibility grid, with Xiamen's real codes.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import pytest
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.kit.geo import metres_per_degree
from cityloop.places import demo_xiamen
from cityloop.places.models import Region, UnitGrid
from cityloop.places.service import (
    PlaceIndex,
    children,
    get_region,
    import_geojson,
    region_path,
)

SIMING, HULI = "350203", "350206"
JIALIAN, YINGCUI = "350203011", "350203011003"


def test_the_demo_city_in_the_database(db_session: Session) -> None:
    """R-GR-1, R-GR-2: the tree, the codes and the unit grids, as stored."""
    counts = demo_xiamen.build(db_session)
    assert counts["district"] == 6 and counts["street"] == 54 and counts["community"] == 555

    by_level = dict(
        db_session.execute(select(Region.level, func.count()).group_by(Region.level)).all()
    )
    assert by_level == {
        "city": 1,
        "district": 6,
        "street": 54,
        "community": 555,
        "resp_grid": counts["resp_grid"],
    }
    assert [r.name for r in children(db_session, "350200")] == [
        "思明区",
        "海沧区",
        "湖里区",
        "集美区",
        "同安区",
        "翔安区",
    ]
    assert [r.code for r in children(db_session, None)] == ["350200"]
    jialian = get_region(db_session, JIALIAN)
    assert jialian is not None and jialian.name == "嘉莲街道" and jialian.level == "street"
    assert [(r.code, r.name) for r in region_path(db_session, YINGCUI)] == [
        ("350200", "厦门市"),
        (SIMING, "思明区"),
        (JIALIAN, "嘉莲街道"),
        (YINGCUI, "盈翠社区"),
    ]
    siming = get_region(db_session, SIMING)
    assert siming is not None and 60 < siming.area_km2 < 110

    grids = db_session.execute(
        select(UnitGrid.code, UnitGrid.community_code, UnitGrid.resp_grid_code)
    ).all()
    codes = [g.code for g in grids]
    assert 10_000 <= len(codes) <= 20_000
    assert len(set(codes)) == len(codes)
    assert all(len(c) == 15 and c.isdigit() for c in codes)
    assert all(g.code[:12] == g.community_code for g in grids)
    assert {c[:6] for c in codes} == {SIMING, HULI}
    assert all(g.resp_grid_code and g.resp_grid_code[:12] == g.community_code for g in grids)
    # Sequence numbers run 001…n without gaps in every community.
    per_community = collections.defaultdict(list)
    for code in codes:
        per_community[code[:12]].append(int(code[12:]))
    for seqs in per_community.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)) and len(seqs) <= 999
    # Every community of the two island districts has unit grids and 2–4 resp grids.
    island = db_session.scalars(
        select(Region.code).where(
            Region.level == "community",
            (Region.code.like(f"{SIMING}%")) | (Region.code.like(f"{HULI}%")),
        )
    ).all()
    assert set(island) == set(per_community)
    resp_per_community = collections.Counter(
        code[:12]
        for code in db_session.scalars(select(Region.code).where(Region.level == "resp_grid"))
    )
    assert set(resp_per_community) == set(island)
    assert set(resp_per_community.values()) <= {2, 3, 4}

    # A second build into the same database is refused, not half-done.
    with pytest.raises(ValueError, match="already exists"):
        demo_xiamen.build(db_session)


def test_locating_in_the_demo_city(db_session: Session) -> None:
    """R-GR-1, R-GR-2: seed 002's 盈翠社区 is found from a point inside it."""
    demo_xiamen.build(db_session)
    index = PlaceIndex.load(db_session)
    lon, lat = demo_xiamen.sample_point(db_session, YINGCUI)
    assert (lon, lat) == demo_xiamen.sample_point(index, YINGCUI)
    loc = index.locate(lon, lat)
    assert loc is not None
    assert (loc.community, loc.street, loc.district) == (YINGCUI, JIALIAN, SIMING)
    assert (loc.community_name, loc.street_name, loc.district_name) == (
        "盈翠社区",
        "嘉莲街道",
        "思明区",
    )
    assert loc.unit_grid is not None and loc.unit_grid.startswith(YINGCUI)
    assert loc.resp_grid is not None and loc.resp_grid.startswith(YINGCUI + "R")
    assert index.locate(119.5, 24.0) is None  # the Taiwan Strait
    # 集美区 has no unit grids: a point there still gets its community.
    jimei = demo_xiamen.sample_point(db_session, "350211001001")
    in_jimei = index.locate(*jimei)
    assert in_jimei is not None and in_jimei.unit_grid is None
    assert in_jimei.community == "350211001001" and in_jimei.district == "350211"


def test_unit_grids_are_about_100_m_squares_and_tile_the_island() -> None:
    """R-GR-1: pure, on the generated shapes (no database)."""
    city = demo_xiamen.generate()
    mx, my = metres_per_degree(24.5)
    areas = sorted(g.geometry.area * mx * my for g in city.unit_grids)
    median = areas[len(areas) // 2]
    assert 9_900 < median < 10_100  # m²: the typical grid is a full 100 m square
    island = shapely.union_all([r.geometry for r in city.regions if r.code in (SIMING, HULI)])
    covered = shapely.union_all([g.geometry for g in city.unit_grids])
    assert covered.symmetric_difference(island).area * mx * my < 1_000  # m², rounding only
    assert all(g.geometry.is_valid for g in city.unit_grids)


def test_generation_is_deterministic_across_processes() -> None:
    """Same codes and geometry on every run (hash seeds differ between processes)."""
    code = "from cityloop.places.demo_xiamen import generate; print(generate().fingerprint())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert other == demo_xiamen.generate().fingerprint()


def test_a_bad_feature_is_refused_with_its_index_and_field(db_session: Session) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "3502030", "name": "坏街道", "parent_code": SIMING},
                "geometry": shapely.geometry.mapping(shapely.box(118.08, 24.45, 118.09, 24.46)),
            }
        ],
    }
    with pytest.raises(ValueError, match=r"feature 0: field 'code': expected 9 digits"):
        import_geojson(db_session, fc, "street")
