"""Benchmark point location over the demo city's unit grids (no database needed).

    .venv/bin/python bench/bench_locate.py [--points 200000] [--repeat 3]

Compares, on the same seeded random points inside the bounds of 思明区 + 湖里区:

* raw      — ``shapely.points`` + ``STRtree.query(points, predicate="intersects")`` over the
             unit-grid polygons: the floor any point→grid lookup pays;
* arrays   — ``PlaceIndex.locate_arrays``: the raster pre-filter, the unit-grid query with
             border tie-breaking, the fallback to region polygons (district, then street /
             community / responsibility grid), and code columns for every point (also timed
             with the raster pre-filter off);
* many     — ``PlaceIndex.locate_many``: the above plus one ``Location`` (with its H3 cell and
             names) per point;
* loop     — a Python loop of ``PlaceIndex.locate``.

The speed ratio is raw time / our time (1.0 = as fast as the raw tree); the goal for the
vectorised path is ≥ 0.8.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely

from cityloop.places import demo_xiamen
from cityloop.places.service import PlaceIndex

SEED = 20261122


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description="PlaceIndex locate benchmark")
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.points

    t0 = time.perf_counter()
    city = demo_xiamen.generate()
    t_generate = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = PlaceIndex(city.regions, city.unit_grids)
    t_index = time.perf_counter() - t0

    # The baseline gets its own copies of the polygons, so nothing it does is helped by the
    # preparation PlaceIndex caches on its geometries (and vice versa).
    raw_polygons = shapely.from_wkb(shapely.to_wkb([g.geometry for g in city.unit_grids]))
    t0 = time.perf_counter()
    raw_tree = shapely.STRtree(raw_polygons)
    t_raw_tree = time.perf_counter() - t0

    island = shapely.union_all(
        [r.geometry for r in city.regions if r.code in demo_xiamen.GRID_DISTRICTS]
    )
    minx, miny, maxx, maxy = island.bounds
    rng = np.random.default_rng(SEED)
    lons = rng.uniform(minx, maxx, n)
    lats = rng.uniform(miny, maxy, n)

    def raw() -> Any:
        return raw_tree.query(shapely.points(lons, lats), predicate="intersects")

    prebuilt = shapely.points(lons, lats)

    def raw_query_only() -> Any:
        return raw_tree.query(prebuilt, predicate="intersects")

    # Warm up (first queries prepare the tree geometries).
    raw()
    index.locate_arrays(lons[:1000], lats[:1000])

    t_raw, pairs = best_of(args.repeat, raw)
    t_raw_q, _ = best_of(args.repeat, raw_query_only)
    t_arrays, arrays = best_of(args.repeat, lambda: index.locate_arrays(lons, lats))
    t_many, many = best_of(args.repeat, lambda: index.locate_many(lons, lats))
    lon_list, lat_list = lons.tolist(), lats.tolist()
    t_loop, looped = best_of(
        1, lambda: [index.locate(x, y) for x, y in zip(lon_list, lat_list, strict=True)]
    )

    # The three answers must agree with each other and with the raw tree.
    assert many == looped, "locate_many and locate disagree"
    assert [loc.unit_grid if loc else None for loc in many] == arrays.unit_grid.tolist()
    no_lattice = PlaceIndex(city.regions, city.unit_grids, lattice_side=0)
    t_no_lattice, plain = best_of(1, lambda: no_lattice.locate_arrays(lons, lats))
    for column in ("unit_grid", "resp_grid", "community", "street", "district"):
        assert np.array_equal(getattr(plain, column), getattr(arrays, column)), column
    raw_hit = np.zeros(n, dtype=bool)
    raw_hit[pairs[0]] = True
    assert np.array_equal(raw_hit, arrays.unit_grid != None)  # noqa: E711 (element-wise)

    in_grid = int(raw_hit.sum())
    inside = int(arrays.inside.sum())
    print(f"demo city: {len(city.unit_grids)} unit grids, {len(city.regions)} regions")
    print(
        f"generate {t_generate:.2f} s, PlaceIndex {t_index * 1e3:.0f} ms, "
        f"raw STRtree {t_raw_tree * 1e3:.0f} ms"
    )
    print(
        f"{n} points in [{minx:.4f}, {maxx:.4f}] x [{miny:.4f}, {maxy:.4f}]: "
        f"{in_grid} in a unit grid, {inside - in_grid} in the city without one, "
        f"{n - inside} outside"
    )
    print(f"{len(pairs[0]) - in_grid} extra hits on shared borders (resolved to lowest code)")
    print()
    print(f"{'method':<44}{'µs/point':>10}{'speed ratio':>13}")

    def line(label: str, seconds: float) -> None:
        print(f"{label:<44}{seconds / n * 1e6:>10.3f}{t_raw / seconds:>13.2f}")

    line("raw: points + STRtree.query (baseline)", t_raw)
    line("raw: STRtree.query on prebuilt points", t_raw_q)
    line("PlaceIndex.locate_arrays (code columns)", t_arrays)
    line("  the same without the raster pre-filter", t_no_lattice)
    line("PlaceIndex.locate_many (list[Location])", t_many)
    line("loop of PlaceIndex.locate", t_loop)
    print()
    ratio = t_raw / t_arrays
    verdict = "meets" if ratio >= 0.8 else "misses"
    print(f"locate_arrays / raw speed ratio {ratio:.2f} ({verdict} the 0.8 goal)")
    print(f"locate_many  / raw speed ratio {t_raw / t_many:.2f}")


if __name__ == "__main__":
    main()
