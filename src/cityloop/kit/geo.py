"""Coordinate helpers: GCJ-02 ⇄ WGS-84, H3 cells and great-circle distances.

Chinese web maps (Amap, Tencent) publish GCJ-02, an obfuscated datum whose offset from WGS-84
is a few hundred metres. cityloop stores WGS-84 and converts at the edges, so these helpers are
the only place the offset formulas live.
"""

from __future__ import annotations

import math

import h3

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 offset formulas.
_A = 6378245.0
_EE = 0.00669342162296594323

# Mean Earth radius (IUGG) for haversine distances.
EARTH_RADIUS_M = 6371008.8

__all__ = [
    "EARTH_RADIUS_M",
    "gcj02_to_wgs84",
    "h3_cell",
    "haversine_m",
    "metres_per_degree",
    "out_of_china",
    "wgs84_to_gcj02",
]


def out_of_china(lon: float, lat: float) -> bool:
    """The offset is only applied inside mainland China's rough bounding box."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _offset(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 offset (dlon, dlat) in degrees at a WGS-84 position."""
    dlat = _delta_lat(lon - 105.0, lat - 35.0)
    dlon = _delta_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (the forward formula is exact by definition)."""
    if out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float, *, tolerance: float = 1e-9) -> tuple[float, float]:
    """GCJ-02 → WGS-84 by fixed-point iteration on the forward formula.

    The one-step inverse (subtract the offset computed at the GCJ point) is off by up to a few
    metres; the offset varies slowly, so iterating converges to below ``tolerance`` degrees in
    a handful of steps.
    """
    if out_of_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        if abs(elon) < tolerance and abs(elat) < tolerance:
            break
        wlon -= elon
        wlat -= elat
    return wlon, wlat


def h3_cell(lon: float, lat: float, res: int = 10) -> str:
    """The H3 cell (hex string) of a WGS-84 point; note h3 takes (lat, lng)."""
    return str(h3.latlng_to_cell(lat, lon, res))


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``lat`` on the WGS-84 ellipsoid.

    With these two factors a city-sized area can be treated as a plane (equirectangular
    projection): the error over 50 km is well under 1%, without a projection library.
    """
    phi = math.radians(lat)
    per_lon = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
    per_lat = 111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    return per_lon, per_lat
