"""Monthly sums of the fact rows (the cube), kept exactly equal to them.

Each `Spec` is one additive question an indicator asks (closures, filings, actions per person,
…): which fact rows, which month column, which keys it groups by at the finest, which sums.
The cube holds, per spec, month and key, the sums of the stored fact rows. It is built with
the rollups (`build`) and moved by deltas when a case's rows are derived again (`delta` before
and after, `apply`), in the same transaction, so it always equals the stored rows.

`grouped()` answers a spec for any window: whole months from the cube, the days at the edges
from the fact rows, and — between two refreshes — the cases changed since taken out of the
cube (their stored rows) and put back fresh (`rollup.fact_source`'s temporary rows). The
answer is what the same sums over the fact rows would give; tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, case, delete, func, insert, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause

from cityloop.evaluation.facts import ACCEPTANCE, ACCEPTANCE_FROM
from cityloop.evaluation.models import CaseFact, CubeRow, EventFact

if TYPE_CHECKING:
    from cityloop.evaluation.repository import Window
    from cityloop.evaluation.rollup import FactSource

PLACE = ("district", "street", "community", "resp_grid")
METHODS = ("service", "management", "enforcement")
ACTOR_ACTIONS = ("send_to_verify", "file", "reject", "merge", "close", "dispatch")
KEY_COLUMNS = ("k1", "k2", "k3", "k4", "k5", "k6")
MEASURE_COLUMNS = ("m1", "m2", "m3", "m4", "m5", "m6")
INT_KEYS = frozenset({"department_id", "actor_id", "reporter_id", "filed_by"})
CUBE: Any = CubeRow.__table__

Columns = Any  # a FromClause's .c


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


@dataclass(frozen=True)
class Spec:
    name: str
    table: str  # "events" or "cases"
    time: str  # the instant a row belongs to
    month: str  # its yyyymm column
    keys: tuple[str, ...]
    measures: Callable[[Columns], dict[str, Any]]
    where: Callable[[Columns], list[ColumnElement[bool]]]

    @property
    def names(self) -> list[str]:
        """The measures' names, in the order of the cube's m1…m6 columns."""
        return _NAMES[self.name]


def _closes(c: Columns) -> dict[str, Any]:
    out = {
        "closed": func.count(),
        "closed_on_time": _count_if(c.flag.is_(True)),
        "handled_on_time": _count_if(c.handled_on_time.is_(True)),
    }
    for method in METHODS:
        out[f"method_{method}"] = _count_if(c.method == method)
    return out


def _flagged(c: Columns) -> dict[str, Any]:
    return {
        "n": func.count(),
        "flag_true": _count_if(c.flag.is_(True)),
        "flag_known": _count_if(c.flag.is_not(None)),
    }


SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec(
            "closes",
            "events",
            "at",
            "month",
            ("department_id", *PLACE),
            _closes,
            lambda c: [c.action == "close"],
        ),
        Spec(
            "actions",
            "events",
            "at",
            "month",
            ("department_id", *PLACE, "action"),
            lambda c: {"n": func.count()},
            lambda c: [c.action.in_(("rework", "approve_postpone", "return"))],
        ),
        Spec(
            "submits",
            "events",
            "at",
            "month",
            ("department_id",),
            _flagged,
            lambda c: [c.action == "submit_result"],
        ),
        Spec(
            "visits",
            "events",
            "at",
            "month",
            ("department_id",),
            _flagged,
            lambda c: [c.action == "return_visit"],
        ),
        Spec(
            "actor_actions",
            "events",
            "at",
            "month",
            ("actor_id", "action"),
            lambda c: {
                "n": func.count(),
                "on_time": _count_if(c.on_time.is_(True)),
                "flag_true": _count_if(c.flag.is_(True)),
            },
            lambda c: [c.actor_id.is_not(None), c.action.in_(ACTOR_ACTIONS)],
        ),
        Spec(
            "accepted",
            "events",
            "at",
            "month",
            ("actor_id",),
            lambda c: {"accepted": func.count()},
            lambda c: [
                c.first_by_actor.is_(True),
                c.action.in_(sorted(ACCEPTANCE)),
                c.from_state.in_(sorted(ACCEPTANCE_FROM)),
            ],
        ),
        Spec(
            "site_tasks",
            "events",
            "stage_entered_at",
            "entered_month",
            ("stage", *PLACE),
            lambda c: {
                "due": _count_if((c.action.in_(("verify", "report_check"))) | c.on_time.is_(False)),
                "on_time": _count_if(
                    and_(c.action.in_(("verify", "report_check")), c.on_time.is_(True))
                ),
            },
            lambda c: [c.stage.in_(("verify", "check")), c.stage_entered_at.is_not(None)],
        ),
        Spec(
            "filings",
            "cases",
            "filed_at",
            "filed_month",
            (*PLACE, "source"),
            lambda c: {"filed": func.count()},
            lambda c: [c.filed_at.is_not(None)],
        ),
        Spec(
            "reported",
            "cases",
            "created_at",
            "created_month",
            (),
            lambda c: {
                "reports": func.count(),
                "filed": _count_if(c.filed_at.is_not(None)),
                "rejected": _count_if(c.state == "rejected"),
                "merged": _count_if(c.state == "merged"),
            },
            lambda c: [],
        ),
        Spec(
            "inspector_reports",
            "cases",
            "created_at",
            "created_month",
            ("reporter_id",),
            lambda c: {"reports": func.count(), "valid": _count_if(c.filed_at.is_not(None))},
            lambda c: [c.source == "inspector", c.reporter_id.is_not(None)],
        ),
        Spec(
            "voided",
            "cases",
            "filed_at",
            "filed_month",
            ("filed_by",),
            lambda c: {"voided": func.count()},
            lambda c: [c.filed_by.is_not(None), c.voided_after_filing.is_(True)],
        ),
    )
}

_NAMES: dict[str, list[str]] = {
    spec.name: list(spec.measures((EventFact if spec.table == "events" else CaseFact).__table__.c))
    for spec in SPECS.values()
}
assert all(len(names) <= 6 for names in _NAMES.values())

Sums = dict[tuple[Any, ...], dict[str, int]]


def _source(tables: Mapping[str, FromClause], spec: Spec) -> FromClause:
    return tables[spec.table]


def sums(
    session: Session,
    tables: Mapping[str, FromClause],
    spec: Spec,
    by: Sequence[str],
    where: Sequence[ColumnElement[bool]],
    *,
    by_month: bool = False,
) -> Sums:
    """SUM the spec's measures over fact rows, grouped by `by` (and the month)."""
    source = _source(tables, spec)
    c = source.c
    groups = ([c[spec.month]] if by_month else []) + [c[name] for name in by]
    measures = spec.measures(c)
    query = select(*groups, *[m.label(k) for k, m in measures.items()]).where(
        *spec.where(c), *where
    )
    if groups:
        query = query.group_by(*groups)
    out: Sums = {}
    width = len(groups)
    names = list(measures)
    for row in session.execute(query).all():
        values = dict(zip(names, (int(v or 0) for v in row[width:]), strict=True))
        if any(values.values()):
            out[tuple(row[:width])] = values
    return out


def _add(target: Sums, source: Sums, sign: int = 1) -> None:
    for key, values in source.items():
        bucket = target.setdefault(key, {})
        for name, value in values.items():
            bucket[name] = bucket.get(name, 0) + sign * value


# -- keeping the cube -------------------------------------------------------------------------
def _stored_key(value: Any) -> str:
    return "" if value is None else str(value)


def _read_key(name: str, value: str) -> Any:
    if value == "":
        return None
    return int(value) if name in INT_KEYS else value


def build(session: Session, tables: Mapping[str, FromClause]) -> int:
    """Write the whole cube from the stored fact rows."""
    session.execute(delete(CUBE))
    written = 0
    for spec in SPECS.values():
        rows = []
        for key, values in sums(session, tables, spec, spec.keys, [], by_month=True).items():
            month, *keys = key
            if month is None:
                continue
            rows.append(_cube_row(spec, int(month), keys, values))
        for start in range(0, len(rows), 5000):
            session.execute(insert(CUBE), rows[start : start + 5000])
        written += len(rows)
    return written


def _cube_row(
    spec: Spec, month: int, keys: Sequence[Any], values: Mapping[str, int]
) -> dict[str, Any]:
    stored = [_stored_key(k) for k in keys] + [""] * (len(KEY_COLUMNS) - len(keys))
    measures = [int(values.get(name, 0)) for name in spec.names]
    measures += [0] * (len(MEASURE_COLUMNS) - len(measures))
    return {
        "spec": spec.name,
        "month": month,
        **dict(zip(KEY_COLUMNS, stored, strict=True)),
        **dict(zip(MEASURE_COLUMNS, measures, strict=True)),
    }


def contributions(
    session: Session, tables: Mapping[str, FromClause], case_ids: Sequence[int]
) -> dict[str, Sums]:
    """What these cases' stored rows add to each spec, by month and key."""
    out: dict[str, Sums] = {}
    for spec in SPECS.values():
        c = _source(tables, spec).c
        out[spec.name] = sums(
            session, tables, spec, spec.keys, [c.case_id.in_(case_ids)], by_month=True
        )
    return out


def apply(session: Session, before: dict[str, Sums], after: dict[str, Sums]) -> None:
    """Move the cube by (after − before) for the keys either touches."""
    for name, spec in SPECS.items():
        delta: Sums = {}
        _add(delta, after.get(name, {}), 1)
        _add(delta, before.get(name, {}), -1)
        delta = {k: v for k, v in delta.items() if any(v.values()) and k[0] is not None}
        if not delta:
            continue
        by_month: dict[int, list[tuple[Any, ...]]] = {}
        for key in delta:
            by_month.setdefault(int(key[0]), []).append(key)
        for month, all_keys in by_month.items():
            for start in range(0, len(all_keys), 1000):
                _apply_month(session, spec, month, all_keys[start : start + 1000], delta)


def _apply_month(
    session: Session, spec: Spec, month: int, keys: list[tuple[Any, ...]], delta: Sums
) -> None:
    width = len(spec.keys)
    key_columns = [CUBE.c[k] for k in KEY_COLUMNS[:width]]
    stored_keys = [tuple(_stored_key(k) for k in key[1:]) for key in keys]
    condition = [CUBE.c.spec == spec.name, CUBE.c.month == month]
    if width:
        condition.append(tuple_(*key_columns).in_(stored_keys))
    names = spec.names
    measure_columns = [CUBE.c[m] for m in MEASURE_COLUMNS[: len(names)]]
    current: dict[tuple[str, ...], dict[str, int]] = {}
    for row in session.execute(select(*key_columns, *measure_columns).where(*condition)).all():
        current[tuple(row[:width])] = dict(zip(names, row[width:], strict=True))
    for key, stored in zip(keys, stored_keys, strict=True):
        bucket = current.setdefault(stored, {})
        for measure, value in delta[key].items():
            bucket[measure] = bucket.get(measure, 0) + value
    session.execute(delete(CUBE).where(*condition))
    rows = [
        _cube_row(spec, month, list(stored), values)
        for stored, values in current.items()
        if any(values.values())
    ]
    if rows:
        session.execute(insert(CUBE), rows)


# -- reading ----------------------------------------------------------------------------------
def _month_start(month: int, tz: Any) -> datetime:
    return datetime.combine(date(month // 100, month % 100, 1), time(0), tz)


def _next(month: int) -> int:
    year, m = divmod(month, 100)
    return year * 100 + m + 1 if m < 12 else (year + 1) * 100 + 1


def whole_months(w: Window, latest: datetime | None) -> list[int]:
    """Months inside the window that the cube can answer: wholly inside it, or — for the
    month the window ends in — with no fact row after the window's end."""
    tz = w.start.tzinfo
    local = w.start.astimezone(tz)
    month = local.year * 100 + local.month
    if _month_start(month, tz) < w.start:
        month = _next(month)
    out = []
    while _month_start(month, tz) < w.end:
        end = _month_start(_next(month), tz)
        if end <= w.end or (latest is not None and latest < w.end):
            out.append(month)
        month = _next(month)
    return out


def grouped(
    session: Session, src: FactSource, spec: Spec, w: Window, by: Sequence[str]
) -> list[dict[str, Any]]:
    """The spec's sums over the window, grouped by `by` (a subset of its keys)."""
    if w.empty:
        return []
    tables = {"events": src.events, "cases": src.cases}
    total: Sums = {}
    # The cube keeps a spec's own keys only (no unit grids): finer questions go to the rows.
    usable = src.cube and set(by) <= set(spec.keys)
    months = whole_months(w, src.latest) if usable else []
    tz = w.start.tzinfo
    if months:
        first, last = _month_start(months[0], tz), _month_start(_next(months[-1]), tz)
        edges = [(w.start, first), (min(last, w.end), w.end)]
        _add(total, _from_cube(session, spec, months, by))
        if src.fresh is not None:
            stored, fresh, dirty = src.fresh
            month_col = stored[spec.table].c[spec.month]
            in_months = [month_col.in_(months)]
            stale_where = [stored[spec.table].c.case_id.in_(select(dirty.c.case_id)), *in_months]
            _add(total, sums(session, stored, spec, by, stale_where), -1)
            fresh_month = fresh[spec.table].c[spec.month]
            _add(total, sums(session, fresh, spec, by, [fresh_month.in_(months)]))
    else:
        edges = [(w.start, w.end)]
    for start, end in edges:
        if end > start:
            time_column = tables[spec.table].c[spec.time]
            _add(
                total,
                sums(session, tables, spec, by, [time_column >= start, time_column < end]),
            )
    return [
        {**dict(zip(by, key, strict=True)), **values}
        for key, values in total.items()
        if any(values.values())
    ]


def _from_cube(session: Session, spec: Spec, months: Iterable[int], by: Sequence[str]) -> Sums:
    positions = [spec.keys.index(name) for name in by]
    columns = [CUBE.c[KEY_COLUMNS[i]] for i in positions]
    names = spec.names
    measure_columns = [CUBE.c[m] for m in MEASURE_COLUMNS[: len(names)]]
    width = len(columns)
    out: Sums = {}
    # The cube's rows are by all of the spec's keys: the database sums them up to `by`.
    query = select(*columns, *[func.sum(m) for m in measure_columns]).where(
        CUBE.c.spec == spec.name, CUBE.c.month.in_(list(months))
    )
    if columns:
        query = query.group_by(*columns)
    for row in session.execute(query).all():
        if row[width] is None:  # no rows at all: SUM over nothing
            continue
        key = tuple(_read_key(name, value) for name, value in zip(by, row[:width], strict=True))
        bucket = out.setdefault(key, {})
        for name, value in zip(names, row[width:], strict=True):
            bucket[name] = bucket.get(name, 0) + int(value)
    return out
