"""PlaceIndex on hand-made squares: a point → unit grid → responsibility grid → community →
street → district (R-GR-1 unit grids cover the city, R-GR-2 the four levels above them).

Layout (lon 118.00–118.04, lat 24.00–24.01):

    district 350203 = [118.00, 118.02]           district 350206 = [118.02, 118.04]
      street 350203001 = the whole district        street 350206001 = [118.02, 118.03]
        community …001001 = [118.00, 118.01]         community …001001 = [118.02, 118.025]
          resp grid …001001R01 = the community       (east half of the street: no community;
          unit grids 001 = [118.000, 118.005]         east half of the district: no street)
                     002 = [118.005, 118.010]
                     (south half only, lat 24.000–24.005)
        community …001002 = [118.01, 118.02]
          unit grid 001 = [118.010, 118.015] (south half), no responsibility grid
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import shapely

from cityloop.kit.geo import h3_cell
from cityloop.places.service import Location, PlaceIndex, RegionShape, UnitGridShape

S, N, MID = 24.00, 24.01, 24.005


def box(x0: float, x1: float, y0: float = S, y1: float = N) -> shapely.Polygon:
    return shapely.box(x0, y0, x1, y1)


REGIONS = [
    RegionShape("350200", "city", "厦门市", None, box(118.00, 118.04)),
    RegionShape("350203", "district", "思明区", "350200", box(118.00, 118.02)),
    RegionShape("350206", "district", "湖里区", "350200", box(118.02, 118.04)),
    RegionShape("350203001", "street", "甲街道", "350203", box(118.00, 118.02)),
    RegionShape("350206001", "street", "乙街道", "350206", box(118.02, 118.03)),
    RegionShape("350203001001", "community", "一社区", "350203001", box(118.00, 118.01)),
    RegionShape("350203001002", "community", "二社区", "350203001", box(118.01, 118.02)),
    RegionShape("350206001001", "community", "三社区", "350206001", box(118.02, 118.025)),
    RegionShape(
        "350203001001R01", "resp_grid", "一社区第一网格", "350203001001", box(118.0, 118.01)
    ),
]
GRIDS = [
    UnitGridShape(
        "350203001001001", "350203001001", "350203001001R01", box(118.0, 118.005, S, MID)
    ),
    UnitGridShape(
        "350203001001002", "350203001001", "350203001001R01", box(118.005, 118.01, S, MID)
    ),
    UnitGridShape("350203001002001", "350203001002", None, box(118.01, 118.015, S, MID)),
]


@pytest.fixture(scope="module")
def index() -> PlaceIndex:
    return PlaceIndex(REGIONS, GRIDS)


def test_a_point_inside_a_unit_grid_gets_the_whole_chain(index: PlaceIndex) -> None:
    """R-GR-1, R-GR-2."""
    loc = index.locate(118.0025, 24.0025)
    assert loc == Location(
        lon=118.0025,
        lat=24.0025,
        h3_cell=h3_cell(118.0025, 24.0025),
        unit_grid="350203001001001",
        resp_grid="350203001001R01",
        community="350203001001",
        street="350203001",
        district="350203",
        community_name="一社区",
        street_name="甲街道",
        district_name="思明区",
    )
    assert dataclasses.asdict(loc)["unit_grid"] == "350203001001001"
    with pytest.raises(dataclasses.FrozenInstanceError):
        loc.lon = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("lon", "lat", "unit_grid"),
    [
        (118.005, 24.0025, "350203001001001"),  # shared edge of two unit grids
        (118.01, 24.0025, "350203001001002"),  # shared edge across two communities
        (118.005, 24.005, "350203001001001"),  # shared corner of the grids and the fallback
        (118.0, 24.0, "350203001001001"),  # the outer corner belongs to the city
    ],
)
def test_points_on_borders_resolve_to_the_lowest_code(
    index: PlaceIndex, lon: float, lat: float, unit_grid: str
) -> None:
    """R-GR-1: every point belongs to exactly one unit grid, the same one every time."""
    loc = index.locate(lon, lat)
    assert loc is not None and loc.unit_grid == unit_grid


@pytest.mark.parametrize(
    ("lon", "lat"), [(118.05, 24.005), (117.99, 24.005), (118.01, 24.02), (119.5, 24.0)]
)
def test_points_outside_every_district_are_outside_the_city(
    index: PlaceIndex, lon: float, lat: float
) -> None:
    assert index.locate(lon, lat) is None


def test_inside_the_city_without_a_unit_grid_falls_back_to_the_smallest_region(
    index: PlaceIndex,
) -> None:
    """R-GR-2: the deepest region that contains the point answers."""
    in_resp = index.locate(118.0025, 24.0075)  # north half of 一社区, inside its resp grid
    assert in_resp is not None
    assert (in_resp.unit_grid, in_resp.resp_grid, in_resp.community) == (
        None,
        "350203001001R01",
        "350203001001",
    )
    in_community = index.locate(118.015, 24.0075)
    assert in_community is not None
    assert (in_community.unit_grid, in_community.resp_grid, in_community.community) == (
        None,
        None,
        "350203001002",
    )
    in_street = index.locate(118.0275, 24.005)
    assert in_street is not None
    assert (in_street.community, in_street.street, in_street.district) == (
        None,
        "350206001",
        "350206",
    )
    assert in_street.street_name == "乙街道" and in_street.community_name is None
    in_district = index.locate(118.035, 24.005)
    assert in_district is not None
    assert (in_district.street, in_district.district, in_district.district_name) == (
        None,
        "350206",
        "湖里区",
    )
    # On the border of two districts' communities, the lower code wins too.
    on_border = index.locate(118.02, 24.0075)
    assert on_border is not None and on_border.community == "350203001002"


def _probe_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    lons = rng.uniform(117.995, 118.045, 3000)
    lats = rng.uniform(23.995, 24.015, 3000)
    # Points exactly on edges and corners, where tie-breaking matters.
    xs, ys = np.meshgrid(np.arange(118.0, 118.0401, 0.0025), np.arange(24.0, 24.0101, 0.0025))
    lons = np.concatenate([lons, xs.ravel(), [math.nan]])
    lats = np.concatenate([lats, ys.ravel(), [24.005]])
    return lons, lats


def test_vectorised_locate_equals_one_point_at_a_time(index: PlaceIndex) -> None:
    lons, lats = _probe_points()
    many = index.locate_many(lons, lats)
    single = [index.locate(x, y) for x, y in zip(lons.tolist(), lats.tolist(), strict=True)]
    assert many[:-1] == single[:-1]
    assert many[-1] is None and single[-1] is None  # NaN is nowhere
    assert {loc.unit_grid for loc in many if loc} >= {g.code for g in GRIDS}
    arrays = index.locate_arrays(lons, lats)
    assert arrays.unit_grid.tolist() == [loc.unit_grid if loc else None for loc in many]
    assert arrays.community.tolist() == [loc.community if loc else None for loc in many]
    assert arrays.district.tolist() == [loc.district if loc else None for loc in many]
    assert arrays.inside.tolist() == [loc is not None for loc in many]


def test_the_raster_prefilter_never_changes_an_answer(index: PlaceIndex) -> None:
    lons, lats = _probe_points()
    plain = PlaceIndex(REGIONS, GRIDS, lattice_side=0)
    assert index.locate_many(lons, lats) == plain.locate_many(lons, lats)
    coarse = PlaceIndex(REGIONS, GRIDS, lattice_side=7)
    assert coarse.locate_many(lons, lats) == plain.locate_many(lons, lats)


def test_an_empty_batch_and_bad_shapes(index: PlaceIndex) -> None:
    assert index.locate_many([], []) == []
    with pytest.raises(ValueError, match="same length"):
        index.locate_many([118.0], [24.0, 24.1])


def test_a_unit_grid_must_hang_below_a_known_community() -> None:
    orphan = UnitGridShape("350203001009001", "350203001009", None, box(118.0, 118.001))
    with pytest.raises(ValueError, match="unknown region 350203001009"):
        PlaceIndex(REGIONS, [*GRIDS, orphan])


def test_lookups(index: PlaceIndex) -> None:
    assert len(index) == 3
    assert [r.code for r in index.regions("district")] == ["350203", "350206"]
    region = index.region("350206001")
    assert region is not None and region.name == "乙街道"
    assert [g.code for g in index.unit_grids_of("350203001001")] == [
        "350203001001001",
        "350203001001002",
    ]
    grid = index.unit_grid("350203001002001")
    assert grid is not None and grid.resp_grid_code is None
    assert index.unit_grid("350203001002999") is None
