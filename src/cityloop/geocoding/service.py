"""Importing the gazetteer (also from an uploaded file, for the administrator's page and API)
and geocoding addresses. Services flush; the caller commits."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cityloop.errors import ValidationFailed
from cityloop.geocoding.models import AddressPoint
from cityloop.places.models import Region

KINDS = ("doorplate", "poi", "place")
MATCH_CUTOFF = 85.0  # one wrong character in a seven-character name still matches
_PUNCT = re.compile(r"[\s,，。.、;；:：()（）\[\]【】\"'“”‘’/\\-]+")


def normalize(text: str, prefixes: tuple[str, ...] = ()) -> str:
    """Full-width to half-width, no spaces or punctuation, known admin prefixes dropped."""
    value = unicodedata.normalize("NFKC", text or "")
    value = _PUNCT.sub("", value)
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if prefix and value.startswith(prefix) and len(value) > len(prefix):
                value = value[len(prefix) :]
                changed = True
    return value


@dataclass(frozen=True)
class Geocoded:
    lon: float
    lat: float
    name: str
    kind: str
    score: float


class Gazetteer:
    """The gazetteer in memory, with the administrative names that prefix addresses."""

    def __init__(
        self,
        points: list[tuple[str, str, str, str | None, float, float]],
        admin_names: dict[str, str],
    ) -> None:
        self.points = points  # (kind, name, normalized, district, lon, lat)
        self.admin_names = admin_names  # name → region code (district/street/city)
        # Longest first so that "思明区" is not left behind after stripping "厦门市".
        self.prefixes = tuple(sorted(admin_names, key=len, reverse=True))
        self._choices = [p[2] for p in points]

    @classmethod
    def load(cls, session: Session) -> Gazetteer:
        rows = session.execute(
            select(
                AddressPoint.kind,
                AddressPoint.name,
                AddressPoint.normalized,
                AddressPoint.district,
                AddressPoint.lon,
                AddressPoint.lat,
            )
        ).all()
        admin = {
            name: code
            for code, name in session.execute(
                select(Region.code, Region.name).where(
                    Region.level.in_(("city", "district", "street"))
                )
            ).all()
        }
        # Addresses are often written without the 市/区 suffix ("厦门思明区…").
        for name, code in list(admin.items()):
            if name.endswith(("市", "区")) and len(name) > 2:
                admin.setdefault(name[:-1], code)
        return cls([tuple(r) for r in rows], admin)  # type: ignore[misc]

    def district_in(self, address: str) -> str | None:
        text = unicodedata.normalize("NFKC", address or "")
        for name in self.prefixes:
            code = self.admin_names[name]
            if len(code) == 6 and not code.endswith("00") and name in text:
                return code
        return None

    def geocode(self, address: str) -> Geocoded | None:
        query = normalize(address, self.prefixes)
        if len(query) < 2 or not self._choices:
            return None
        district = self.district_in(address)
        candidates: list[int] = list(range(len(self.points)))
        if district is not None:
            candidates = [i for i, p in enumerate(self.points) if p[3] in (None, district)]
        choices = {i: self._choices[i] for i in candidates}
        exact = [i for i, c in choices.items() if c == query]
        if exact:
            kind, name, _n, _d, lon, lat = self.points[exact[0]]
            return Geocoded(lon, lat, name, kind, 100.0)
        # "中山路步行街附近": a known name inside the query, the longest one wins.
        inside = [
            i
            for i, c in choices.items()
            if len(c) >= 3 and c in query and _numbers(c) == _numbers(query)
        ]
        if inside:
            index = max(inside, key=lambda i: len(self._choices[i]))
            kind, name, _n, _d, lon, lat = self.points[index]
            return Geocoded(lon, lat, name, kind, 95.0)
        best = process.extractOne(query, choices, scorer=fuzz.ratio, score_cutoff=MATCH_CUTOFF)
        if best is None:
            return None
        _choice, score, index = best
        kind, name, _n, _d, lon, lat = self.points[index]
        # A doorplate number must match exactly: 厦禾路1108号 is not 厦禾路1106号.
        if _numbers(query) != _numbers(self._choices[index]):
            return None
        return Geocoded(lon, lat, name, kind, float(score))


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+", text)


class GazetteerHolder:
    """One gazetteer per process, reloaded when the table changes."""

    def __init__(self) -> None:
        self._gazetteer: Gazetteer | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def get(self, session: Session) -> Gazetteer:
        stamp = session.execute(
            select(func.count(AddressPoint.id), func.coalesce(func.max(AddressPoint.id), 0))
        ).one()
        key = (int(stamp[0]), int(stamp[1]))
        with self._lock:
            if self._gazetteer is None or key != self._stamp:
                self._gazetteer = Gazetteer.load(session)
                self._stamp = key
            return self._gazetteer


def import_points(session: Session, rows: list[dict[str, Any]], *, source: str = "rows") -> int:
    """Add gazetteer points (name, kind, lon, lat, optional district); all or nothing."""
    admin = Gazetteer.load(session)
    clean: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=1):
        where = f"{source} row {number}"
        name = str(row.get("name") or "").strip()
        if not name:
            raise ValueError(f"{where}: name is empty")
        if len(name) > 120:
            raise ValueError(f"{where}: name has more than 120 characters")
        kind = str(row.get("kind") or "poi").strip()
        if kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        try:
            lon, lat = float(row["lon"]), float(row["lat"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: lon and lat must be numbers") from exc
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"{where}: lon/lat out of range")
        district = str(row.get("district") or "").strip() or admin.district_in(name)
        if district is not None and not re.fullmatch(r"\d{6}", district):
            raise ValueError(f"{where}: district must be a 6-digit code, not {district[:20]!r}")
        clean.append(
            {
                "kind": kind,
                "name": name,
                "normalized": normalize(name, admin.prefixes),
                "district": district,
                "lon": lon,
                "lat": lat,
            }
        )
    if clean:
        session.execute(insert(AddressPoint), clean)
        session.flush()
    return len(clean)


def read_csv(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


def read_geojson(collection: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for number, feature in enumerate(collection.get("features") or [], start=1):
        geometry = feature.get("geometry") or {}
        if geometry.get("type") != "Point":
            raise ValueError(f"feature {number}: geometry must be a Point")
        lon, lat = geometry["coordinates"][:2]
        rows.append({**(feature.get("properties") or {}), "lon": lon, "lat": lat})
    return rows


def import_file(session: Session, data: bytes, filename: str | None, *, field: str = "file") -> int:
    """Gazetteer points from an uploaded CSV (columns name, kind, lon, lat, district?) or a
    GeoJSON FeatureCollection of Points: all or nothing. A bad file is a ValidationFailed on
    `field` naming the row at fault."""
    if not data:
        raise ValidationFailed("choose a CSV or GeoJSON file", field=field)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"the file is not UTF-8 text: {exc}", field=field) from exc
    name = (filename or "").lower()
    as_json = name.endswith((".json", ".geojson")) or text.lstrip().startswith("{")
    try:
        if as_json:
            collection = json.loads(text)
            if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
                raise ValueError("expected a GeoJSON FeatureCollection of Points")
            rows = read_geojson(collection)
            source = "feature"
        else:
            rows = read_csv(text)
            source = "CSV"
        if not rows:
            raise ValueError("the file holds no points")
        return import_points(session, rows, source=source)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, csv.Error) as exc:
        raise ValidationFailed(f"nothing imported: {exc}", field=field) from exc


def count_points(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AddressPoint)) or 0)
