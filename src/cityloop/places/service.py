"""Places services: the point index (``PlaceIndex``), GeoJSON import (also of an uploaded
file, for the administrator's page and API) and region lookups.

Services only ``flush()``; the caller owns the transaction.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cityloop.errors import ValidationFailed
from cityloop.kit.geo import h3_cell, metres_per_degree
from cityloop.places.models import REGION_LEVELS, Region, UnitGrid

__all__ = [
    "LocatedArrays",
    "Location",
    "PlaceIndex",
    "RegionShape",
    "UnitGridShape",
    "area_km2",
    "children",
    "get_region",
    "import_file",
    "import_geojson",
    "import_unit_grids",
    "level_counts",
    "place_exists",
    "region_path",
    "validate_code",
]

# Depth of each level in the tree; deeper regions win when a point falls back to regions.
_DEPTH = {level: i for i, level in enumerate(REGION_LEVELS)}
_PARENT_LEVEL: dict[str, str | None] = {
    "city": None,
    "district": "city",
    "street": "district",
    "community": "street",
    "resp_grid": "community",
}
_CODE_PATTERNS = {
    "city": re.compile(r"\d{6}"),
    "district": re.compile(r"\d{6}"),
    "street": re.compile(r"\d{9}"),
    "community": re.compile(r"\d{12}"),
    "resp_grid": re.compile(r"\d{12}R\d{2}"),
    "unit_grid": re.compile(r"\d{15}"),
}
_CODE_SHAPES = {
    "city": "6 digits",
    "district": "6 digits",
    "street": "9 digits",
    "community": "12 digits",
    "resp_grid": "12 digits + 'R' + 2 digits",
    "unit_grid": "15 digits",
}
# How many leading characters a code shares with its parent's code.
_PREFIX = {"district": 4, "street": 6, "community": 9, "resp_grid": 12, "unit_grid": 12}
_IN_CHUNK = 500
# Cells along the longer side of the city's pre-filter raster (see _Lattice).
LATTICE_SIDE = 256
_MIXED = -2


@dataclass(frozen=True)
class Location:
    """Where a WGS-84 point is: its unit grid and the chain of regions above it.

    ``unit_grid`` is None inside the city where no unit grid has been drawn yet; the other
    codes then come from the smallest region polygon that contains the point.
    """

    lon: float
    lat: float
    h3_cell: str
    unit_grid: str | None
    resp_grid: str | None
    community: str | None
    street: str | None
    district: str
    community_name: str | None
    street_name: str | None
    district_name: str


@dataclass(frozen=True)
class RegionShape:
    """A region with its geometry in memory (WGS-84), the input of :class:`PlaceIndex`."""

    code: str
    level: str
    name: str
    parent_code: str | None
    geometry: BaseGeometry
    name_en: str | None = None


@dataclass(frozen=True)
class UnitGridShape:
    """A unit grid with its geometry in memory (WGS-84)."""

    code: str
    community_code: str
    resp_grid_code: str | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class LocatedArrays:
    """Column-wise answer of :meth:`PlaceIndex.locate_arrays`: one entry per input point.

    Object arrays hold codes or None; ``inside`` is False for points outside the city.
    """

    unit_grid: npt.NDArray[np.object_]
    resp_grid: npt.NDArray[np.object_]
    community: npt.NDArray[np.object_]
    street: npt.NDArray[np.object_]
    district: npt.NDArray[np.object_]
    inside: npt.NDArray[np.bool_]


class PlaceIndex:
    """The one point → place index, built once and then read by every request.

    Three STRtrees, queried in turn, each only for the points the previous one missed:

    1. the unit-grid polygons — the hot path, where almost every case lands;
    2. the district polygons — a miss here means "outside the city" (None);
    3. the regions below a district (street, community, responsibility grid) — for points
       inside the city where no unit grid is drawn; the deepest region containing the point
       wins, so the answer is the community if communities cover it, else the street, else
       just the district.

    Keeping the districts apart from their subdivisions means a point in the sea costs one
    cheap test against six polygons instead of tests against every coastal street and
    community whose bounding box it falls in.

    Every tree slot maps to a precomputed row of codes and names, so answering a point is an
    array lookup. Each tree is built over geometries sorted so that the lowest slot wins: unit
    grids and districts by code, subdivisions by depth (deepest first) then code. A point on a
    shared border therefore resolves deterministically to the lowest code.

    In front of the trees sits a coarse raster (:class:`_Lattice`) that answers, exactly, the
    points far from any unit grid and any border (sea, countryside, districts without unit
    grids); ``lattice_side=0`` turns it off.

    The index prepares the given geometries in place (a GEOS cache; they stay immutable).
    """

    def __init__(
        self,
        regions: Iterable[RegionShape],
        unit_grids: Iterable[UnitGridShape],
        *,
        lattice_side: int = LATTICE_SIDE,
    ) -> None:
        by_code: dict[str, RegionShape] = {}
        for region in regions:
            if region.level not in _DEPTH:
                raise ValueError(f"region {region.code}: unknown level {region.level!r}")
            by_code[region.code] = region
        self._regions = by_code

        grids = sorted(unit_grids, key=lambda g: g.code)
        districts = sorted(
            (r for r in by_code.values() if r.level == "district"), key=lambda r: r.code
        )
        subdivisions = sorted(
            (r for r in by_code.values() if _DEPTH[r.level] > _DEPTH["district"]),
            key=lambda r: (-_DEPTH[r.level], r.code),
        )
        self._grids = grids
        self._grid_slot = {g.code: i for i, g in enumerate(grids)}
        self._grids_by_community: dict[str, list[UnitGridShape]] = {}
        for g in grids:
            self._grids_by_community.setdefault(g.community_code, []).append(g)
        # Slot layout of the row table: [unit grids | districts | subdivisions | outside].
        self._n_grids = len(grids)
        self._district_base = len(grids)
        self._sub_base = len(grids) + len(districts)
        self._outside = self._sub_base + len(subdivisions)
        n_rows = self._outside + 1

        rows: list[dict[str, Any] | None] = []
        for g in grids:
            chain = self._chain(g.community_code, what=f"unit grid {g.code}")
            if g.resp_grid_code is not None:
                if g.resp_grid_code not in by_code:
                    raise ValueError(
                        f"unit grid {g.code}: unknown responsibility grid {g.resp_grid_code}"
                    )
                chain["resp_grid"] = g.resp_grid_code
            chain["unit_grid"] = g.code
            rows.append(self._row(chain))
        for r in (*districts, *subdivisions):
            rows.append(self._row(self._chain(r.code, what=f"region {r.code}")))
        rows.append(None)
        self._rows = rows

        columns: dict[str, npt.NDArray[np.object_]] = {}
        for name in ("unit_grid", "resp_grid", "community", "street", "district"):
            col = np.empty(n_rows, dtype=object)
            col[:] = [row[name] if row is not None else None for row in rows]
            columns[name] = col
        self._columns = columns

        trees = []
        for shapes in (grids, districts, subdivisions):
            geoms = np.array([x.geometry for x in shapes], dtype=object)
            # Prepared geometries make the trees' "intersects" refinement much cheaper.
            shapely.prepare(geoms)
            trees.append(shapely.STRtree(geoms))
        self._grid_tree, self._district_tree, self._sub_tree = trees
        self._lattice = _Lattice.build(self, lattice_side) if lattice_side > 0 else None

    # ----------------------------------------------------------------- construction
    @classmethod
    def load(cls, session: Session) -> PlaceIndex:
        """Build the index from the ``regions`` and ``unit_grids`` tables."""
        region_rows = session.execute(
            select(
                Region.code,
                Region.level,
                Region.name,
                Region.parent_code,
                Region.geometry,
                Region.name_en,
            )
        ).all()
        grid_rows = session.execute(
            select(
                UnitGrid.code, UnitGrid.community_code, UnitGrid.resp_grid_code, UnitGrid.geometry
            )
        ).all()
        region_geoms = shapely.from_geojson([r.geometry for r in region_rows])
        grid_geoms = shapely.from_geojson([g.geometry for g in grid_rows])
        regions = [
            RegionShape(r.code, r.level, r.name, r.parent_code, geom, r.name_en)
            for r, geom in zip(region_rows, region_geoms, strict=True)
        ]
        grids = [
            UnitGridShape(g.code, g.community_code, g.resp_grid_code, geom)
            for g, geom in zip(grid_rows, grid_geoms, strict=True)
        ]
        return cls(regions, grids)

    def _chain(self, code: str, *, what: str) -> dict[str, str | None]:
        chain: dict[str, str | None] = {level: None for level in REGION_LEVELS}
        seen: set[str] = set()
        current: str | None = code
        while current is not None:
            region = self._regions.get(current)
            if region is None:
                raise ValueError(f"{what}: unknown region {current}")
            if current in seen:
                raise ValueError(f"{what}: cycle in the region tree at {current}")
            seen.add(current)
            chain[region.level] = region.code
            current = region.parent_code
        if chain["district"] is None:
            raise ValueError(f"{what}: no district above it")
        return chain

    def _row(self, chain: dict[str, str | None]) -> dict[str, Any]:
        def name(code: str | None) -> str | None:
            return None if code is None else self._regions[code].name

        return {
            "unit_grid": chain.get("unit_grid"),
            "resp_grid": chain["resp_grid"],
            "community": chain["community"],
            "street": chain["street"],
            "district": chain["district"],
            "community_name": name(chain["community"]),
            "street_name": name(chain["street"]),
            "district_name": name(chain["district"]),
        }

    # ----------------------------------------------------------------- queries
    def locate(self, lon: float, lat: float) -> Location | None:
        """The place of one WGS-84 point, or None outside the city."""
        lon, lat = float(lon), float(lat)
        if self._lattice is not None:
            slot = self._lattice.slot(lon, lat)
            if slot != _MIXED:
                return _location(lon, lat, self._rows[slot])
        return _location(lon, lat, self._rows[self._tree_slot(lon, lat)])

    def _tree_slot(self, lon: float, lat: float) -> int:
        point = shapely.Point(lon, lat)
        # Unit grids are small: the tree's own predicate test is the cheapest single call.
        hits = self._grid_tree.query(point, predicate="intersects")
        if hits.size:
            return int(hits[0]) if hits.size == 1 else min(hits.tolist())
        district = _lowest_hit_one(self._district_tree, point, lon, lat)
        if district < 0:
            return self._outside
        sub = _lowest_hit_one(self._sub_tree, point, lon, lat)
        return sub + self._sub_base if sub >= 0 else district + self._district_base

    def _slots(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.intp]]:
        x = np.asarray(lons, dtype=np.float64)
        y = np.asarray(lats, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError("lons and lats must be 1-D arrays of the same length")
        if self._lattice is None:
            return x, y, self._tree_slots(x, y)
        slots = self._lattice.slots(x, y)
        mixed = np.flatnonzero(slots == _MIXED)
        if mixed.size:
            slots[mixed] = self._tree_slots(x[mixed], y[mixed])
        return x, y, slots

    def _tree_slots(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.intp]:
        points = shapely.points(x, y)
        slots = _lowest_hit(self._grid_tree, points, x, y)
        missed = np.flatnonzero(slots < 0)
        if missed.size:
            points, mx, my = points[missed], x[missed], y[missed]
            district = _lowest_hit(self._district_tree, points, mx, my)
            answer = np.where(district < 0, self._outside, district + self._district_base)
            in_city = np.flatnonzero(district >= 0)
            if in_city.size:
                sub = _lowest_hit(self._sub_tree, points[in_city], mx[in_city], my[in_city])
                found = sub >= 0
                answer[in_city[found]] = sub[found] + self._sub_base
            slots[missed] = answer
        return slots

    def locate_arrays(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> LocatedArrays:
        """Vectorised locate answering with code columns: no per-point Python work at all.

        Use this for bulk work (imports, analytics); use :meth:`locate_many` when each point
        needs a :class:`Location` (with its H3 cell and names).
        """
        _, _, slots = self._slots(lons, lats)
        cols = self._columns
        return LocatedArrays(
            unit_grid=cols["unit_grid"][slots],
            resp_grid=cols["resp_grid"][slots],
            community=cols["community"][slots],
            street=cols["street"][slots],
            district=cols["district"][slots],
            inside=slots != self._outside,
        )

    def locate_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> list[Location | None]:
        """:meth:`locate` for many points at once (vectorised tree queries)."""
        x, y, slots = self._slots(lons, lats)
        rows = self._rows
        return [
            _location(lon, lat, rows[slot])
            for lon, lat, slot in zip(x.tolist(), y.tolist(), slots.tolist(), strict=True)
        ]

    # ----------------------------------------------------------------- lookups
    def region(self, code: str) -> RegionShape | None:
        return self._regions.get(code)

    def regions(self, level: str | None = None) -> list[RegionShape]:
        """Regions (of one level, if given) sorted by code."""
        return sorted(
            (r for r in self._regions.values() if level is None or r.level == level),
            key=lambda r: r.code,
        )

    def unit_grid(self, code: str) -> UnitGridShape | None:
        slot = self._grid_slot.get(code)
        return None if slot is None else self._grids[slot]

    def unit_grids_of(self, community_code: str) -> list[UnitGridShape]:
        """The unit grids of one community, sorted by code."""
        return list(self._grids_by_community.get(community_code, ()))

    def __len__(self) -> int:
        return self._n_grids


class _Lattice:
    """A coarse raster over the city that answers most points without touching a tree.

    Each cell (about 1/256 of the city's extent; ~200 m for Xiamen) holds the slot every point
    inside it resolves to, when that is certain: the cell touches no unit grid and lies wholly
    outside every district, or wholly inside the region the trees would pick. Cells that touch
    a unit grid or a border are ``_MIXED`` and their points go through the trees. The answer is
    exactly the trees' answer, only cheaper: sea, countryside and districts without unit grids
    cost a few arithmetic operations a point.
    """

    def __init__(
        self, x0: float, y0: float, cell: float, nx: int, ny: int, state: npt.NDArray[np.intp]
    ) -> None:
        self.x0, self.y0, self.cell, self.nx, self.ny = x0, y0, cell, nx, ny
        self.state = state
        self._state_list: list[int] = state.tolist()

    @classmethod
    def build(cls, index: PlaceIndex, side: int) -> _Lattice | None:
        trees = (index._grid_tree, index._district_tree, index._sub_tree)
        geoms = np.concatenate([t.geometries for t in trees])
        if not geoms.size:
            return None
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms))
        cell = max(maxx - minx, maxy - miny) / side
        if not cell > 0:
            return None
        nx = math.floor((maxx - minx) / cell) + 1
        ny = math.floor((maxy - miny) / cell) + 1
        ix, iy = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny)))
        # Each box is widened by a hair so that rounding in the point → cell arithmetic can
        # never put a point just outside the box its cell's answer was computed for.
        eps = cell * 1e-6
        boxes = shapely.box(
            minx + ix * cell - eps,
            miny + iy * cell - eps,
            minx + (ix + 1) * cell + eps,
            miny + (iy + 1) * cell + eps,
        )
        state = np.full(len(boxes), _MIXED, dtype=np.intp)

        # Cells near a unit grid always go to the trees, so the cheap bounding-box overlap is
        # enough here (conservative, hence still exact).
        touches_grid = np.zeros(len(boxes), dtype=bool)
        touches_grid[index._grid_tree.query(boxes)[0]] = True
        free = np.flatnonzero(~touches_grid)
        district = _lowest_box_hit(index._district_tree, boxes[free])
        sub = _lowest_box_hit(index._sub_tree, boxes[free])

        state[free[district < 0]] = index._outside
        # Inside the city for sure: the lowest-slot district contains the whole cell.
        has_d = np.flatnonzero(district >= 0)
        in_d = shapely.contains_properly(
            index._district_tree.geometries[district[has_d]], boxes[free[has_d]]
        )
        has_d = has_d[in_d]
        no_sub = has_d[sub[has_d] < 0]
        state[free[no_sub]] = district[no_sub] + index._district_base
        # ... and the lowest-slot (deepest) subdivision contains it too.
        with_sub = has_d[sub[has_d] >= 0]
        in_sub = shapely.contains_properly(
            index._sub_tree.geometries[sub[with_sub]], boxes[free[with_sub]]
        )
        with_sub = with_sub[in_sub]
        state[free[with_sub]] = sub[with_sub] + index._sub_base
        return cls(minx, miny, cell, nx, ny, state)

    def slots(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        fx = (x - self.x0) / self.cell
        fy = (y - self.y0) / self.cell
        # Comparisons are False for NaN, so unusable coordinates fall through to "mixed" and
        # are answered (as outside) by the trees, with no warning from an integer cast.
        ok = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)
        out = np.full(len(x), _MIXED, dtype=np.intp)
        idx = fy[ok].astype(np.intp) * self.nx + fx[ok].astype(np.intp)
        out[ok] = self.state[idx]
        return out

    def slot(self, x: float, y: float) -> int:
        fx = (x - self.x0) / self.cell
        fy = (y - self.y0) / self.cell
        if 0 <= fx < self.nx and 0 <= fy < self.ny:
            return self._state_list[int(fy) * self.nx + int(fx)]
        return _MIXED


def _lowest_box_hit(tree: shapely.STRtree, boxes: npt.NDArray[np.object_]) -> npt.NDArray[np.intp]:
    """For each box, the lowest index of the tree geometries it intersects, or -1."""
    big = np.iinfo(np.intp).max
    best = np.full(len(boxes), big, dtype=np.intp)
    hit_box, hit_geom = tree.query(boxes)
    # As in _lowest_hit: test with the prepared tree geometry, not the query box.
    exact = shapely.intersects(tree.geometries[hit_geom], boxes[hit_box])
    np.minimum.at(best, hit_box[exact], hit_geom[exact])
    best[best == big] = -1
    return best


def _lowest_hit(
    tree: shapely.STRtree,
    points: npt.NDArray[np.object_],
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
) -> npt.NDArray[np.intp]:
    """For each point, the lowest tree index among the geometries it intersects, or -1.

    The tree only gives bounding-box candidates; the exact test is ``intersects_xy`` on the
    (prepared) tree geometries. ``tree.query(points, predicate="intersects")`` would prepare
    the points instead and run an unindexed point-in-polygon test per candidate, which is
    ~10x slower against a district coastline of a few hundred vertices (measured in
    bench/bench_locate.py).

    A point on a border shared by several geometries hits all of them; the lowest index is
    the deterministic tie-break (trees are built in code order).
    """
    big = np.iinfo(np.intp).max
    best = np.full(len(points), big, dtype=np.intp)
    hit_point, hit_geom = tree.query(points)
    exact = shapely.intersects_xy(tree.geometries[hit_geom], x[hit_point], y[hit_point])
    np.minimum.at(best, hit_point[exact], hit_geom[exact])
    best[best == big] = -1
    return best


def _lowest_hit_one(tree: shapely.STRtree, point: shapely.Point, x: float, y: float) -> int:
    """:func:`_lowest_hit` for a single point."""
    candidates = tree.query(point)
    if not candidates.size:
        return -1
    exact = shapely.intersects_xy(tree.geometries[candidates], x, y)
    hits = candidates[exact]
    if not hits.size:
        return -1
    return int(hits[0]) if hits.size == 1 else min(hits.tolist())


_new_object = object.__new__


def _location(lon: float, lat: float, row: dict[str, Any] | None) -> Location | None:
    if row is None:
        return None
    # A frozen dataclass __init__ sets each of its 11 fields through object.__setattr__
    # (~1.7 µs); filling the instance dict directly yields the same object (equal, hashable,
    # same repr) in a third of the time, which matters when locating points in bulk.
    loc = _new_object(Location)
    fields = loc.__dict__
    fields.update(row)
    fields["lon"] = lon
    fields["lat"] = lat
    fields["h3_cell"] = h3_cell(lon, lat)
    return loc


# --------------------------------------------------------------------- geometry helpers
def area_km2(geom: BaseGeometry) -> float:
    """Area of a WGS-84 polygon in km², via an equirectangular projection at its centroid.

    Accurate to well under 1% for city-sized shapes, which is all the region table needs.
    """
    if geom.is_empty:
        return 0.0
    mx, my = metres_per_degree(geom.centroid.y)
    return float(geom.area) * mx * my / 1e6


def _geometry_json(geom: BaseGeometry) -> str:
    return str(shapely.to_geojson(geom))


# --------------------------------------------------------------------- import
def validate_code(code: object, level: str) -> str | None:
    """Why ``code`` is not a well-formed code of ``level``, or None when it is."""
    if not isinstance(code, str):
        return f"expected a string of {_CODE_SHAPES[level]}, got {code!r}"
    if not _CODE_PATTERNS[level].fullmatch(code):
        return f"expected {_CODE_SHAPES[level]} for a {level}, got {code!r}"
    return None


def _bad(index: int, field: str, message: str) -> ValueError:
    return ValueError(f"feature {index}: field '{field}': {message}")


def _features(feature_collection: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(feature_collection, dict) or feature_collection.get("type") != (
        "FeatureCollection"
    ):
        raise ValueError("expected a GeoJSON FeatureCollection")
    features = feature_collection.get("features")
    if not isinstance(features, list):
        raise ValueError("FeatureCollection without a 'features' list")
    return features


def _feature_geometry(index: int, feature: dict[str, Any]) -> BaseGeometry:
    raw = feature.get("geometry") if isinstance(feature, dict) else None
    if not isinstance(raw, dict):
        raise _bad(index, "geometry", "missing")
    try:
        geom = shapely.from_geojson(json.dumps(raw))
    except GEOSException as exc:
        raise _bad(index, "geometry", f"not readable GeoJSON ({exc})") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise _bad(index, "geometry", f"expected a Polygon or MultiPolygon, got {geom.geom_type}")
    if geom.is_empty:
        raise _bad(index, "geometry", "empty")
    if not geom.is_valid:
        raise _bad(index, "geometry", f"invalid polygon ({shapely.is_valid_reason(geom)})")
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise _bad(index, "geometry", "coordinates are not WGS-84 lon/lat")
    return geom


def _properties(index: int, feature: dict[str, Any]) -> dict[str, Any]:
    props = feature.get("properties") if isinstance(feature, dict) else None
    if not isinstance(props, dict):
        raise _bad(index, "properties", "missing")
    return props


def _existing_codes(session: Session, codes: Sequence[str]) -> dict[str, str]:
    """code → level of those codes already in ``regions``."""
    found: dict[str, str] = {}
    for start in range(0, len(codes), _IN_CHUNK):
        chunk = codes[start : start + _IN_CHUNK]
        for code, level in session.execute(
            select(Region.code, Region.level).where(Region.code.in_(chunk))
        ):
            found[code] = level
    return found


def _existing_grid_codes(session: Session, codes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(codes), _IN_CHUNK):
        chunk = codes[start : start + _IN_CHUNK]
        found.update(session.scalars(select(UnitGrid.code).where(UnitGrid.code.in_(chunk))))
    return found


def import_geojson(session: Session, feature_collection: dict[str, Any], level: str) -> int:
    """Insert the regions of one level from a FeatureCollection; returns how many.

    Feature properties: ``code``, ``name``, ``parent_code`` (and optional ``name_en``).
    Geometry: a valid WGS-84 Polygon/MultiPolygon. Parents must already exist (import level
    by level, top down). Raises ``ValueError`` naming the feature index and field.
    """
    if level not in _PARENT_LEVEL:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(REGION_LEVELS)}")
    parent_level = _PARENT_LEVEL[level]
    features = _features(feature_collection)
    parsed: list[tuple[int, str, str, str | None, str | None, BaseGeometry]] = []
    seen: dict[str, int] = {}
    for i, feature in enumerate(features):
        props = _properties(i, feature)
        code = props.get("code")
        problem = validate_code(code, level)
        if problem:
            raise _bad(i, "code", problem)
        assert isinstance(code, str)
        if code in seen:
            raise _bad(i, "code", f"{code} repeats feature {seen[code]}")
        seen[code] = i
        name = props.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _bad(i, "name", "missing or empty")
        name_en = props.get("name_en")
        if name_en is not None and not isinstance(name_en, str):
            raise _bad(i, "name_en", "expected a string")
        parent = props.get("parent_code")
        if parent_level is None:
            if parent is not None:
                raise _bad(i, "parent_code", "a city has no parent")
        else:
            problem = validate_code(parent, parent_level)
            if problem:
                raise _bad(i, "parent_code", problem)
            assert isinstance(parent, str)
            prefix = _PREFIX[level]
            if code[:prefix] != parent[:prefix]:
                raise _bad(
                    i,
                    "code",
                    f"{code} does not start with the first {prefix} characters "
                    f"of its parent {parent}",
                )
        parsed.append((i, code, name.strip(), name_en, parent, _feature_geometry(i, feature)))

    existing = _existing_codes(session, [p[1] for p in parsed])
    for i, code, *_ in parsed:
        if code in existing:
            raise _bad(i, "code", f"{code} already exists")
    if parent_level is not None:
        parents = _existing_codes(session, sorted({p[4] for p in parsed if p[4] is not None}))
        for i, _code, _name, _en, parent, _geom in parsed:
            assert parent is not None
            if parent not in parents:
                raise _bad(i, "parent_code", f"{parent} does not exist")
            if parents[parent] != parent_level:
                raise _bad(
                    i, "parent_code", f"{parent} is a {parents[parent]}, not a {parent_level}"
                )

    rows = []
    for _i, code, name, name_en, parent, geom in parsed:
        centroid = geom.centroid
        rows.append(
            {
                "code": code,
                "level": level,
                "name": name,
                "name_en": name_en,
                "parent_code": parent,
                "geometry": _geometry_json(geom),
                "centroid_lon": float(centroid.x),
                "centroid_lat": float(centroid.y),
                "area_km2": area_km2(geom),
            }
        )
    if rows:
        session.execute(insert(Region), rows)
        session.flush()
    return len(rows)


def import_unit_grids(session: Session, fc: dict[str, Any]) -> int:
    """Insert unit grids from a FeatureCollection; returns how many.

    Feature properties: ``code`` (15 digits, starting with its community's 12), ``community_code``
    and optional ``resp_grid_code`` (which must belong to that community). Raises
    ``ValueError`` naming the feature index and field.
    """
    features = _features(fc)
    parsed: list[tuple[int, str, str, str | None, BaseGeometry]] = []
    seen: dict[str, int] = {}
    for i, feature in enumerate(features):
        props = _properties(i, feature)
        code = props.get("code")
        problem = validate_code(code, "unit_grid")
        if problem:
            raise _bad(i, "code", problem)
        assert isinstance(code, str)
        if code in seen:
            raise _bad(i, "code", f"{code} repeats feature {seen[code]}")
        seen[code] = i
        community = props.get("community_code")
        problem = validate_code(community, "community")
        if problem:
            raise _bad(i, "community_code", problem)
        assert isinstance(community, str)
        if code[:12] != community:
            raise _bad(i, "code", f"{code} does not start with its community code {community}")
        resp = props.get("resp_grid_code")
        if resp is not None:
            problem = validate_code(resp, "resp_grid")
            if problem:
                raise _bad(i, "resp_grid_code", problem)
            assert isinstance(resp, str)
            if resp[:12] != community:
                raise _bad(i, "resp_grid_code", f"{resp} does not belong to community {community}")
        parsed.append((i, code, community, resp, _feature_geometry(i, feature)))

    existing = _existing_grid_codes(session, [p[1] for p in parsed])
    for i, code, *_ in parsed:
        if code in existing:
            raise _bad(i, "code", f"{code} already exists")
    wanted = sorted({p[2] for p in parsed} | {p[3] for p in parsed if p[3] is not None})
    regions = _existing_codes(session, wanted)
    for i, _code, community, resp, _geom in parsed:
        if regions.get(community) != "community":
            raise _bad(i, "community_code", f"{community} is not an existing community")
        if resp is not None and regions.get(resp) != "resp_grid":
            raise _bad(i, "resp_grid_code", f"{resp} is not an existing responsibility grid")

    rows = []
    for _i, code, community, resp, geom in parsed:
        centroid = geom.centroid
        rows.append(
            {
                "code": code,
                "community_code": community,
                "resp_grid_code": resp,
                "geometry": _geometry_json(geom),
                "centroid_lon": float(centroid.x),
                "centroid_lat": float(centroid.y),
            }
        )
    if rows:
        session.execute(insert(UnitGrid), rows)
        session.flush()
    return len(rows)


IMPORT_LEVELS = (*REGION_LEVELS, "unit_grid")


def import_file(session: Session, data: bytes, level: str, *, field: str = "file") -> int:
    """Regions of one level, or unit grids, from an uploaded GeoJSON file: all or nothing.
    A bad file is a ValidationFailed on `field` naming the feature and property at fault."""
    if level not in IMPORT_LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(IMPORT_LEVELS)}", field="level")
    if not data:
        raise ValidationFailed("choose a GeoJSON file", field=field)
    try:
        collection = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(f"the file is not UTF-8 GeoJSON: {exc}", field=field) from exc
    try:
        if level == "unit_grid":
            return import_unit_grids(session, collection)
        return import_geojson(session, collection, level)
    except ValueError as exc:
        raise ValidationFailed(f"nothing imported: {exc}", field=field) from exc


# --------------------------------------------------------------------- lookups
def place_exists(session: Session, code: str) -> bool:
    """Whether `code` is a region (any level) or a unit grid of this city."""
    if session.get(Region, code) is not None:
        return True
    return session.get(UnitGrid, code) is not None


def level_counts(session: Session) -> dict[str, int]:
    """How many regions of each level and how many unit grids are loaded."""
    counts = {level: 0 for level in IMPORT_LEVELS}
    for level, n in session.execute(select(Region.level, func.count()).group_by(Region.level)):
        counts[level] = int(n)
    counts["unit_grid"] = int(session.scalar(select(func.count()).select_from(UnitGrid)) or 0)
    return counts


def get_region(session: Session, code: str) -> Region | None:
    return session.get(Region, code)


def children(session: Session, code: str | None) -> list[Region]:
    """The direct children of a region, sorted by code; the roots (cities) for None or ""."""
    parent = Region.parent_code.is_(None) if not code else Region.parent_code == code
    return list(session.scalars(select(Region).where(parent).order_by(Region.code)))


def region_path(session: Session, code: str) -> list[Region]:
    """The chain of regions from the city down to ``code`` (empty if ``code`` is unknown)."""
    path: list[Region] = []
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current not in seen:
        seen.add(current)
        region = session.get(Region, current)
        if region is None:
            break
        path.append(region)
        current = region.parent_code
    path.reverse()
    return path
