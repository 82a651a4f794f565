"""Pure coordinate helpers: GCJ-02 ⇄ WGS-84, H3 cells, distances (R-GR-1: every case is
placed on the map in WGS-84, whatever datum a phone or web map hands us)."""

from __future__ import annotations

import math

import h3
import numpy as np
import pytest

from cityloop.kit.geo import (
    gcj02_to_wgs84,
    h3_cell,
    haversine_m,
    metres_per_degree,
    out_of_china,
    wgs84_to_gcj02,
)

XIAMEN_CITY_HALL = (118.0894, 24.4798)


def test_round_trip_error_is_below_a_micro_degree_across_china() -> None:
    rng = np.random.default_rng(7)
    lons = rng.uniform(73.0, 135.0, 2000)
    lats = rng.uniform(18.0, 53.0, 2000)
    worst = 0.0
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
        worst = max(worst, abs(back[0] - lon), abs(back[1] - lat))
    assert worst < 1e-6


def test_the_offset_in_xiamen_is_a_few_hundred_metres_east_and_south() -> None:
    lon, lat = XIAMEN_CITY_HALL
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert 300 < haversine_m(lon, lat, glon, glat) < 800
    assert glon > lon and glat < lat  # the datum shifts Xiamen east and south


def test_inverse_is_better_than_the_one_step_approximation() -> None:
    glon, glat = wgs84_to_gcj02(*XIAMEN_CITY_HALL)
    # One step: subtract the offset measured at the GCJ point itself.
    dlon, dlat = (a - b for a, b in zip(wgs84_to_gcj02(glon, glat), (glon, glat), strict=True))
    one_step = (glon - dlon, glat - dlat)
    assert haversine_m(*one_step, *XIAMEN_CITY_HALL) > 0.01
    assert haversine_m(*gcj02_to_wgs84(glon, glat), *XIAMEN_CITY_HALL) < 0.001


def test_points_outside_china_are_not_shifted() -> None:
    assert out_of_china(2.35, 48.86)
    assert wgs84_to_gcj02(2.35, 48.86) == (2.35, 48.86)
    assert gcj02_to_wgs84(2.35, 48.86) == (2.35, 48.86)


def test_h3_cell_is_resolution_10_and_contains_the_point() -> None:
    lon, lat = XIAMEN_CITY_HALL
    cell = h3_cell(lon, lat)
    assert h3.is_valid_cell(cell) and h3.get_resolution(cell) == 10
    clat, clon = h3.cell_to_latlng(cell)  # h3 speaks (lat, lng)
    assert haversine_m(lon, lat, clon, clat) < 80
    assert h3.get_resolution(h3_cell(lon, lat, res=8)) == 8


def test_haversine_and_the_local_plane_agree() -> None:
    assert haversine_m(118.0, 24.0, 118.0, 24.0) == 0.0
    one_degree = haversine_m(118.0, 24.0, 118.0, 25.0)
    assert one_degree == pytest.approx(111_195, rel=1e-3)
    per_lon, per_lat = metres_per_degree(24.5)
    assert per_lat == pytest.approx(110_800, rel=2e-3)
    phi = math.radians(24.5)
    ellipsoid = 111_319.49 * math.cos(phi) / math.sqrt(1 - 0.00669438 * math.sin(phi) ** 2)
    assert per_lon == pytest.approx(ellipsoid, rel=1e-4)
    # 1 km east in the plane is 1 km on the sphere, to a few metres.
    d = haversine_m(118.1, 24.5, 118.1 + 1000 / per_lon, 24.5)
    assert d == pytest.approx(1000, abs=5)
