"""The evaluation model as data: weights, score tables, grade bands, overdue deductions.

Defaults follow standards/cn_standards.md §5.2 (the China Unicom 数字城管 implementation, the
only weight table found in public); a city edits them (`PUT /api/v1/evaluation/settings`),
and the stored model replaces the defaults key by key. Pure functions: no database here.

Where the notes are silent or broken, the choice is written down here:
- 区域 (regions): the source's weights sum to 70 %. The missing 30 % is given to
  按期结案率 (10 % → 40 %), the headline figure of every published bulletin.
- 受理员 (operators): cityloop sends no check tasks from the acceptance desk (the inspector
  gets the check when the dispatcher approves the result), so 核查按时派发率 is replaced by
  按时结案办理率 — the operator's own closing step within its stage limit.
- Count scores (受理数分值, 派遣数分值, 立案数分值) are monthly tables: counts of other periods
  are scaled to 30 days before the table is read.
- An indicator with nothing to measure (a zero denominator) is left out of the composite and
  the remaining weights are scaled up; with nothing at all there is no score.
- Deductions (R-EV-2; no public table was found): each overdue, unclosed case costs 1 point
  and each case closed late 0.5, at most 20 points, for departments and regions.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from cityloop.errors import ValidationFailed

# kind -> component -> weight (fractions of 1)
DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "inspector": {"valid_rate": 0.4, "missed_rate": 0.2, "verify_rate": 0.2, "check_rate": 0.2},
    "operator": {"accepted": 0.25, "verify_send_rate": 0.4, "close_rate": 0.35},
    "shiftlead": {"file_rate": 0.25, "accurate_file_rate": 0.4, "close_rate": 0.35},
    "dispatcher": {"dispatched": 0.2, "dispatch_rate": 0.4, "accurate_rate": 0.4},
    "department": {
        "case_count": 0.1,
        "closure_rate": 0.3,
        "on_time_handling_rate": 0.3,
        "rework_rate": 0.3,
    },
    "region": {
        "public_rate": 0.1,
        "filing_count": 0.2,
        "closure_rate": 0.3,
        "on_time_closure_rate": 0.4,
    },
}
# Components where a lower rate is better: scored as (1 - rate) × 100.
INVERTED = frozenset({"missed_rate", "rework_rate", "public_rate"})

# Count tables: [[upper bound (inclusive), score], ...] read in order; the last row's bound
# is null (everything above). Monthly counts.
DEFAULT_COUNT_TABLES: dict[str, list[list[float | None]]] = {
    # 受理数分值: >2000 → 100; 1201–2000 → 90; 501–1200 → 75; 301–500 → 60; else 0
    "operator.accepted": [[300, 0], [500, 60], [1200, 75], [2000, 90], [None, 100]],
    # 派遣数分值: no table was published; the 受理数 table is reused.
    "dispatcher.dispatched": [[300, 0], [500, 60], [1200, 75], [2000, 90], [None, 100]],
    # 专业部门 立案数分值 (fewer cases is better): ≤50 → 10 of 10 points, … >1000 → 0.
    "department.case_count": [[50, 100], [100, 90], [200, 75], [500, 60], [1000, 40], [None, 0]],
}
# 区域 立案数分值 per unit grid and month, by area class (一类 / 二类区域): strict upper bounds.
DEFAULT_REGION_FILING: dict[str, list[list[float | None]]] = {
    "1": [[0, 100], [3, 90], [5, 75], [7, 60], [9, 40], [None, 0]],
    "2": [[0, 100], [4, 90], [6, 75], [8, 60], [10, 40], [None, 0]],
}
DEFAULT_BANDS: list[list[Any]] = [["A", 90], ["B", 75], ["C", 60], ["D", 40], ["E", 0]]
DEFAULT_DEDUCTIONS: dict[str, dict[str, float]] = {
    "department": {"overdue_open": 1.0, "closed_late": 0.5, "max": 20.0},
    "region": {"overdue_open": 1.0, "closed_late": 0.5, "max": 20.0},
}
# Sources counted as 公众举报 (citizens and the channels that carry their complaints): a
# public report filed in an inspector's grid is one the inspector missed (漏报).
DEFAULT_PUBLIC_SOURCES = [
    "public",
    "wechat",
    "app",
    "web",
    "open311",
    "hotline_12319",
    "hotline_12345",
    "partner_12345",
    "media",
    "newspaper",
    "forum",
    "visit",
]

DEFAULT_MODEL: dict[str, Any] = {
    "weights": DEFAULT_WEIGHTS,
    "count_tables": DEFAULT_COUNT_TABLES,
    "region_filing": DEFAULT_REGION_FILING,
    # region code prefix -> area class; the longest prefix wins; "" is the default.
    "area_classes": {"": "1"},
    "bands": DEFAULT_BANDS,
    "deductions": DEFAULT_DEDUCTIONS,
    "public_sources": DEFAULT_PUBLIC_SOURCES,
}
MODEL_KEYS = tuple(DEFAULT_MODEL)


def default_model() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_MODEL)


def merged_model(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The defaults with the stored keys laid over them (a stored key replaces the default)."""
    model = default_model()
    for key, value in (stored or {}).items():
        if key in model:
            model[key] = copy.deepcopy(value)
    return model


def validate_model(
    changes: Mapping[str, Any], *, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check a (partial) model laid over `base` (the defaults when None); returns it, or
    raises ValidationFailed naming the field."""
    base = base or DEFAULT_MODEL
    if not isinstance(changes, Mapping):
        raise ValidationFailed("the model must be an object", field="body")
    for key in changes:
        if key not in DEFAULT_MODEL:
            raise ValidationFailed(
                f"unknown setting {key!r}; one of {', '.join(MODEL_KEYS)}", field=key
            )
    if "weights" in changes:
        _check_weights(changes["weights"])
    if "count_tables" in changes:
        tables = changes["count_tables"]
        if not isinstance(tables, Mapping):
            raise ValidationFailed("count_tables must be an object", field="count_tables")
        for name, table in tables.items():
            if name not in DEFAULT_COUNT_TABLES:
                raise ValidationFailed(f"unknown count table {name!r}", field="count_tables")
            _check_table(table, f"count_tables.{name}")
    if "region_filing" in changes:
        tables = changes["region_filing"]
        if not isinstance(tables, Mapping) or not tables:
            raise ValidationFailed(
                "region_filing maps area classes to tables", field="region_filing"
            )
        for name, table in tables.items():
            _check_table(table, f"region_filing.{name}")
    if "area_classes" in changes:
        classes = changes["area_classes"]
        known = set((changes.get("region_filing") or base["region_filing"]).keys())
        if not isinstance(classes, Mapping) or "" not in classes:
            raise ValidationFailed(
                'area_classes maps region code prefixes to area classes and needs a default ""',
                field="area_classes",
            )
        for prefix, value in classes.items():
            if value not in known:
                raise ValidationFailed(
                    f"area class {value!r} of {prefix!r} has no region_filing table",
                    field="area_classes",
                )
    if "bands" in changes:
        _check_bands(changes["bands"])
    if "deductions" in changes:
        _check_deductions(changes["deductions"])
    if "public_sources" in changes:
        sources = changes["public_sources"]
        if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
            raise ValidationFailed(
                "public_sources must be a list of sources", field="public_sources"
            )
    return dict(changes)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_weights(weights: Any) -> None:
    if not isinstance(weights, Mapping):
        raise ValidationFailed("weights must be an object", field="weights")
    for kind, parts in weights.items():
        field = f"weights.{kind}"
        if kind not in DEFAULT_WEIGHTS:
            raise ValidationFailed(f"unknown evaluated kind {kind!r}", field=field)
        if not isinstance(parts, Mapping) or set(parts) != set(DEFAULT_WEIGHTS[kind]):
            expected = ", ".join(DEFAULT_WEIGHTS[kind])
            raise ValidationFailed(f"{field} needs exactly the components {expected}", field=field)
        if not all(_number(v) and v >= 0 for v in parts.values()):
            raise ValidationFailed(f"{field}: weights are numbers ≥ 0", field=field)
        if abs(sum(parts.values()) - 1.0) > 1e-6:
            raise ValidationFailed(
                f"{field}: weights must sum to 1 (100 %), not {sum(parts.values()):g}", field=field
            )


def _check_table(table: Any, field: str) -> None:
    if not isinstance(table, list) or not table:
        raise ValidationFailed(f"{field} must be a list of [bound, score] rows", field=field)
    previous = -math.inf
    for position, row in enumerate(table):
        if not isinstance(row, list) or len(row) != 2 or not _number(row[1]):
            raise ValidationFailed(f"{field}: each row is [bound, score]", field=field)
        bound = row[0]
        last = position == len(table) - 1
        if bound is None:
            if not last:
                raise ValidationFailed(
                    f"{field}: only the last row may be open (null)", field=field
                )
            continue
        if not _number(bound) or bound <= previous:
            raise ValidationFailed(f"{field}: bounds must increase", field=field)
        previous = bound
        if not 0 <= row[1] <= 100:
            raise ValidationFailed(f"{field}: scores lie in 0..100", field=field)
    if table[-1][0] is not None:
        raise ValidationFailed(f"{field}: the last row must be open (null bound)", field=field)


def _check_bands(bands: Any) -> None:
    if not isinstance(bands, list) or not bands:
        raise ValidationFailed("bands must be a list of [grade, lowest score]", field="bands")
    previous = math.inf
    for row in bands:
        if (
            not isinstance(row, list)
            or len(row) != 2
            or not isinstance(row[0], str)
            or not _number(row[1])
        ):
            raise ValidationFailed("each band is [grade, lowest score]", field="bands")
        if row[1] >= previous:
            raise ValidationFailed("bands must go from the best grade down", field="bands")
        previous = row[1]
    if bands[-1][1] != 0:
        raise ValidationFailed("the last band must start at 0", field="bands")


def _check_deductions(deductions: Any) -> None:
    if not isinstance(deductions, Mapping):
        raise ValidationFailed("deductions must be an object", field="deductions")
    for kind, rule in deductions.items():
        field = f"deductions.{kind}"
        if kind not in DEFAULT_DEDUCTIONS:
            raise ValidationFailed(
                f"deductions apply to {', '.join(DEFAULT_DEDUCTIONS)}", field=field
            )
        if not isinstance(rule, Mapping) or set(rule) != {"overdue_open", "closed_late", "max"}:
            raise ValidationFailed(f"{field} needs overdue_open, closed_late and max", field=field)
        if not all(_number(v) and v >= 0 for v in rule.values()):
            raise ValidationFailed(f"{field}: points are numbers ≥ 0", field=field)


# -- computing ---------------------------------------------------------------------------------
def rate(numerator: float, denominator: float) -> float | None:
    """A rate in 0..1, None when there is nothing to measure."""
    if denominator <= 0:
        return None
    return numerator / denominator


def table_score(table: list[list[Any]], value: float, *, strict: bool = False) -> float:
    """Read a [bound, score] table: the first row whose bound holds the value (≤, or < when
    strict); the open last row takes the rest."""
    for bound, score in table:
        if bound is None:
            return float(score)
        if (value < bound) if strict else (value <= bound):
            return float(score)
        if strict and bound == 0 and value == 0:
            return float(score)
    return float(table[-1][1])  # pragma: no cover (validated tables end open)


def monthly(count: float, days: int) -> float:
    """A count scaled to a 30-day month, for the monthly count tables."""
    return count * 30.0 / max(days, 1)


def composite(
    kind: str, parts: Mapping[str, float | None], model: Mapping[str, Any]
) -> float | None:
    """Σ weight × component score (0..100). Rates come in as fractions; inverted ones (lower
    is better) score (1 − rate). Components that are None drop out and the others scale up."""
    weights: Mapping[str, float] = model["weights"][kind]
    total = used = 0.0
    for name, weight in weights.items():
        value = parts.get(name)
        if value is None or weight <= 0:
            continue
        score = value
        if name.endswith("_rate"):
            score = (1.0 - value) * 100.0 if name in INVERTED else value * 100.0
        total += weight * max(0.0, min(100.0, score))
        used += weight
    if used <= 0:
        return None
    return total / used


def deduction(kind: str, overdue_open: int, closed_late: int, model: Mapping[str, Any]) -> float:
    rule = model["deductions"].get(kind)
    if not rule:
        return 0.0
    points = overdue_open * rule["overdue_open"] + closed_late * rule["closed_late"]
    return float(min(points, rule["max"]))


def grade(score: float | None, model: Mapping[str, Any]) -> str | None:
    if score is None:
        return None
    for name, lowest in model["bands"]:
        if score >= lowest:
            return str(name)
    return str(model["bands"][-1][0])


def area_class(code: str, model: Mapping[str, Any]) -> str:
    classes: Mapping[str, str] = model["area_classes"]
    best = ""
    for prefix in classes:
        if code.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return str(classes.get(best, "1"))


def rank(rows: list[dict[str, Any]], key: str = "score") -> None:
    """Competition ranking (1, 2, 2, 4) by score, highest first; rows without a score last,
    unranked."""
    scored = sorted((r for r in rows if r.get(key) is not None), key=lambda r: r[key], reverse=True)
    previous: float | None = None
    position = 0
    for index, row in enumerate(scored, start=1):
        value = round(row[key], 6)
        if value != previous:
            position, previous = index, value
        row["rank"] = position
    for row in rows:
        row.setdefault("rank", None)
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, str(r.get("key", ""))))
