"""The rollups: fact rows derived from the timeline, kept current by the worker.

`refresh()` is the worker's call: it finds the cases whose timelines grew since the last
pass (by event id, watching ids that were not yet committed when read), derives their rows
again (`facts.derive`) and replaces the old ones. `rebuild()` derives everything.

Readers ask `fact_source()` for the rows: by default the stored rollups, with the cases that
changed since the last refresh derived on the spot into temporary tables and put in place of
their stored rows — so figures are exact as of now even when the worker lags, and fast when
it does not. `fact_source(mode="direct")` ignores the rollups and derives every case from its
timeline: the reference the rollups are tested against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql import FromClause

from cityloop.cases.models import Case, CaseEvent
from cityloop.errors import Conflict
from cityloop.evaluation import cube
from cityloop.evaluation.facts import CaseDims, Derived, EventRow, derive
from cityloop.evaluation.models import CaseFact, EventFact, HoldFact, RollupState
from cityloop.evaluation.worktime import WorkTime
from cityloop.kit.calendar import WorkingCalendar
from cityloop.taxonomy.service import stage_limits

CASE_TABLE: Table = CaseFact.__table__  # type: ignore[assignment]
EVENT_TABLE: Table = EventFact.__table__  # type: ignore[assignment]
HOLD_TABLE: Table = HoldFact.__table__  # type: ignore[assignment]
STORED: dict[str, FromClause] = {"cases": CASE_TABLE, "events": EVENT_TABLE}
# The columns a reader sees (the hold rows' surrogate id is storage only).
COLUMNS = {
    "cases": [c.name for c in CASE_TABLE.columns],
    "events": [c.name for c in EVENT_TABLE.columns],
    "holds": [c.name for c in HOLD_TABLE.columns if c.name != "id"],
}
CHUNK = 1000
# An event id missing from a pass (its transaction had not committed yet) is looked for again
# on later passes for this long; after that it was rolled back.
GAP_PATIENCE = timedelta(minutes=30)
# Beyond this many new events a refresh rebuilds everything instead of tracking ids.
REBUILD_ABOVE = 200_000
# The most cases a reader derives on the spot (see fact_source).
DERIVE_LIMIT = 20_000
# How far back a rebuild looks for ids not committed yet.
RECENT_IDS = 10_000
STATE_ID = 1


@dataclass
class RefreshResult:
    cases: int = 0
    events: int = 0
    rebuilt: bool = False
    last_event_id: int = 0
    gaps: int = 0


@dataclass
class FactSource:
    """Three selectables with the columns of the fact tables, and how they were made.

    `cube`: the monthly cube agrees with the stored rows and may answer whole months;
    `latest`: the last event instant among the rows; `fresh`: when cases changed since the
    last refresh were derived on the spot — (stored tables, temporary tables, the temporary
    case table naming those cases)."""

    cases: FromClause
    events: FromClause
    holds: FromClause
    mode: str
    derived_cases: int
    last_event_id: int
    cube: bool = False
    latest: datetime | None = None
    fresh: tuple[dict[str, FromClause], dict[str, FromClause], FromClause] | None = None


# -- deriving ------------------------------------------------------------------------------
def signature(session: Session, calendar: WorkingCalendar) -> str:
    """What the derived rows depend on besides the timeline: stage limits and the calendar."""
    from cityloop.taxonomy.service import calendar_overrides

    body = {
        "limits": sorted(stage_limits(session).items()),
        "tz": calendar.timezone,
        "periods": [[s.isoformat(), e.isoformat()] for s, e in calendar.work_periods],
        "overrides": [[o.day.isoformat(), o.is_workday] for o in calendar_overrides(session)],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


_DIM_COLUMNS = (
    Case.id,
    Case.source,
    Case.class_code,
    Case.kind,
    Case.district,
    Case.street,
    Case.community,
    Case.resp_grid,
    Case.unit_grid,
    Case.h3_cell,
)
_EVENT_COLUMNS = (
    CaseEvent.id,
    CaseEvent.case_id,
    CaseEvent.seq,
    CaseEvent.at,
    CaseEvent.action,
    CaseEvent.actor_id,
    CaseEvent.actor_role,
    CaseEvent.from_state,
    CaseEvent.to_state,
    CaseEvent.department_id,
    CaseEvent.payload,
)


def _timelines(
    session: Session, where_cases: Any, where_events: Any
) -> Iterator[tuple[CaseDims, list[EventRow]]]:
    dims = {
        row.id: CaseDims(
            case_id=row.id,
            source=row.source,
            class_code=row.class_code,
            kind=row.kind,
            district=row.district,
            street=row.street,
            community=row.community,
            resp_grid=row.resp_grid,
            unit_grid=row.unit_grid,
            h3_cell=row.h3_cell,
        )
        for row in session.execute(select(*_DIM_COLUMNS).where(where_cases))
    }
    events: dict[int, list[EventRow]] = {}
    query = select(*_EVENT_COLUMNS).where(where_events).order_by(CaseEvent.case_id, CaseEvent.seq)
    for row in session.execute(query):
        events.setdefault(row[1], []).append(EventRow(*row))
    for case_id in sorted(dims):
        timeline = events.get(case_id)
        if timeline:
            yield dims[case_id], timeline


class Deriver:
    def __init__(self, session: Session, calendar: WorkingCalendar) -> None:
        self.worktime = WorkTime(calendar)
        self.limits = stage_limits(session)

    def chunks(self, session: Session, case_ids: Sequence[int]) -> Iterator[list[Derived]]:
        for start in range(0, len(case_ids), CHUNK):
            chunk = list(case_ids[start : start + CHUNK])
            yield [
                derive(d, e, worktime=self.worktime, limits=self.limits)
                for d, e in _timelines(session, Case.id.in_(chunk), CaseEvent.case_id.in_(chunk))
            ]

    def of_range(self, session: Session, low: int, high: int) -> list[Derived]:
        return [
            derive(d, e, worktime=self.worktime, limits=self.limits)
            for d, e in _timelines(
                session,
                Case.id.between(low, high),
                CaseEvent.case_id.between(low, high),
            )
        ]


def _rows(derived: Iterable[Derived]) -> tuple[list[dict[str, Any]], ...]:
    cases: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    holds: list[dict[str, Any]] = []
    for d in derived:
        cases.append(d.case)
        events.extend(d.events)
        holds.extend(d.holds)
    return cases, events, holds


def _insert(session: Session, tables: Sequence[Table], derived: list[Derived]) -> None:
    for table, rows in zip(tables, _rows(derived), strict=True):
        if rows:
            session.execute(insert(table), rows)


# -- maintaining the stored rollups ---------------------------------------------------------
def _state(session: Session) -> RollupState:
    state = session.get(RollupState, STATE_ID)
    if state is None:
        state = RollupState(id=STATE_ID, last_event_id=0, gaps=[], signature="")
        session.add(state)
        session.flush()
    return state


def rebuild(session: Session, *, calendar: WorkingCalendar, now: datetime) -> RefreshResult:
    """Derive every case's rows again (the first run, or after stage limits or the calendar
    changed). The caller commits."""
    state = _state(session)
    deriver = Deriver(session, calendar)
    for table in (CASE_TABLE, EVENT_TABLE, HOLD_TABLE):
        session.execute(delete(table))
    top = session.scalar(select(func.max(CaseEvent.id))) or 0
    low, high = session.execute(select(func.min(Case.id), func.max(Case.id))).one()
    result = RefreshResult(rebuilt=True, last_event_id=top)
    if low is not None:
        for start in range(low, high + 1, CHUNK):
            derived = deriver.of_range(session, start, start + CHUNK - 1)
            _insert(session, (CASE_TABLE, EVENT_TABLE, HOLD_TABLE), derived)
            result.cases += len(derived)
            result.events += sum(len(d.events) for d in derived)
    cube.build(session, STORED)
    # Recent ids at or below `top` that are not there yet may belong to transactions still
    # open: keep looking for them (older holes were rolled back long ago).
    low_recent = max(1, top - RECENT_IDS + 1)
    recent = set(session.scalars(select(CaseEvent.id).where(CaseEvent.id >= low_recent)))
    gaps = [[i, now.isoformat()] for i in range(low_recent, top + 1) if i not in recent]
    state.last_event_id, state.gaps = top, gaps
    state.refreshed_at, state.signature = now, signature(session, calendar)
    result.gaps = len(gaps)
    session.flush()
    return result


def refresh(session: Session, *, calendar: WorkingCalendar, now: datetime) -> RefreshResult:
    """Bring the rollups up to the timeline: the worker calls this after each sweep, in a
    transaction of its own (the caller commits)."""
    state = _state(session)
    if state.signature != signature(session, calendar):
        return rebuild(session, calendar=calendar, now=now)
    top = session.scalar(select(func.max(CaseEvent.id))) or 0
    if top - state.last_event_id > REBUILD_ABOVE:
        return rebuild(session, calendar=calendar, now=now)
    gap_ids = [int(g[0]) for g in state.gaps or []]
    condition = CaseEvent.id > state.last_event_id
    if gap_ids:
        condition = or_(condition, CaseEvent.id.in_(gap_ids))
    seen = session.execute(select(CaseEvent.id, CaseEvent.case_id).where(condition)).all()
    seen_ids = {event_id for event_id, _ in seen}
    new_top = max([state.last_event_id, *(i for i in seen_ids)])
    cutoff = now - GAP_PATIENCE
    gaps = [
        g
        for g in state.gaps or []
        if int(g[0]) not in seen_ids and datetime.fromisoformat(g[1]) >= cutoff
    ]
    gaps += [
        [i, now.isoformat()] for i in range(state.last_event_id + 1, new_top) if i not in seen_ids
    ]
    case_ids = sorted({case_id for _, case_id in seen})
    result = RefreshResult(cases=len(case_ids), events=len(seen), last_event_id=new_top)
    deriver = Deriver(session, calendar)
    for start, derived in zip(
        range(0, len(case_ids), CHUNK), deriver.chunks(session, case_ids), strict=True
    ):
        chunk = case_ids[start : start + CHUNK]
        before = cube.contributions(session, STORED, chunk)
        for table in (CASE_TABLE, EVENT_TABLE, HOLD_TABLE):
            session.execute(delete(table).where(table.c.case_id.in_(chunk)))
        _insert(session, (CASE_TABLE, EVENT_TABLE, HOLD_TABLE), derived)
        cube.apply(session, before, cube.contributions(session, STORED, chunk))
    state.last_event_id, state.gaps, state.refreshed_at = new_top, gaps, now
    result.gaps = len(gaps)
    session.flush()
    return result


# -- reading --------------------------------------------------------------------------------
_TEMP = MetaData()


def _temp_table(table: Table, columns: list[str]) -> Table:
    name = f"tmp_{table.name}"
    if name in _TEMP.tables:
        return _TEMP.tables[name]
    return Table(
        name,
        _TEMP,
        *[Column(c, table.c[c].type) for c in columns],
        prefixes=["TEMPORARY"],
    )


TEMP_CASES = _temp_table(CASE_TABLE, COLUMNS["cases"])
TEMP_EVENTS = _temp_table(EVENT_TABLE, COLUMNS["events"])
TEMP_HOLDS = _temp_table(HOLD_TABLE, COLUMNS["holds"])


def _fill_temp(session: Session, chunks: Iterable[list[Derived]]) -> int:
    for table in (TEMP_CASES, TEMP_EVENTS, TEMP_HOLDS):
        session.execute(CreateTable(table, if_not_exists=True))
        session.execute(delete(table))
    count = 0
    for derived in chunks:
        _insert(session, (TEMP_CASES, TEMP_EVENTS, TEMP_HOLDS), derived)
        count += len(derived)
    return count


def _overlay(stored: Table, temp: Table, name: str) -> FromClause:
    columns = COLUMNS[name]
    kept = select(*[stored.c[c] for c in columns]).where(
        stored.c.case_id.not_in(select(TEMP_CASES.c.case_id))
    )
    fresh = select(*[temp.c[c] for c in columns])
    return union_all(kept, fresh).subquery(name)


def dirty_case_ids(session: Session) -> list[int] | None:
    """Cases whose timelines grew since the last refresh; None when there are no rollups."""
    state = session.get(RollupState, STATE_ID)
    if state is None or not state.signature:
        return None
    condition = CaseEvent.id > state.last_event_id
    gap_ids = [int(g[0]) for g in state.gaps or []]
    if gap_ids:
        condition = or_(condition, CaseEvent.id.in_(gap_ids))
    return sorted(set(session.scalars(select(CaseEvent.case_id).where(condition))))


def fact_source(session: Session, *, calendar: WorkingCalendar, mode: str = "auto") -> FactSource:
    """The fact rows to count, as of now (see the module docstring for the modes).

    "auto" never derives more than `DERIVE_LIMIT` cases inside a request: when the worker is
    that far behind, or the stored rows were derived under other stage limits or another
    calendar, it counts the stored rows and says so in `mode` ("rollup-behind",
    "rollup-stale"); with no rollups at all and more cases than that, it asks for them."""
    if mode not in ("auto", "direct", "rollup"):
        raise ValueError(f"unknown fact source mode {mode!r}")
    state = session.get(RollupState, STATE_ID)
    last = state.last_event_id if state is not None else 0
    if mode == "rollup":
        return _stored_source(session, "rollup", last)
    deriver = Deriver(session, calendar)
    if mode == "auto":
        built = state is not None and bool(state.signature)
        if built and state is not None and state.signature != signature(session, calendar):
            if _case_count(session) > DERIVE_LIMIT:
                return _stored_source(session, "rollup-stale", last)
            mode = "direct"  # small enough: derive everything under the limits in force
        elif built:
            dirty = dirty_case_ids(session) or []
            if not dirty:
                return _stored_source(session, "rollup", last)
            if len(dirty) > DERIVE_LIMIT:
                return _stored_source(session, "rollup-behind", last)
            count = _fill_temp(session, deriver.chunks(session, dirty))
            latest = max(
                (t for t in (_latest(session, EVENT_TABLE), _latest(session, TEMP_EVENTS)) if t),
                default=None,
            )
            return FactSource(
                _overlay(CASE_TABLE, TEMP_CASES, "cases"),
                _overlay(EVENT_TABLE, TEMP_EVENTS, "events"),
                _overlay(HOLD_TABLE, TEMP_HOLDS, "holds"),
                "rollup+fresh",
                count,
                last,
                cube=True,
                latest=latest,
                fresh=(STORED, {"cases": TEMP_CASES, "events": TEMP_EVENTS}, TEMP_CASES),
            )
        elif _case_count(session) > DERIVE_LIMIT:
            raise Conflict(
                "the evaluation rollups have not been built yet: run `cityloop "
                "evaluation-refresh` (or the worker) once",
                field="rollups",
            )
    ids = list(session.scalars(select(Case.id).order_by(Case.id)))
    count = _fill_temp(session, deriver.chunks(session, ids))
    top = session.scalar(select(func.max(CaseEvent.id))) or 0
    return FactSource(TEMP_CASES, TEMP_EVENTS, TEMP_HOLDS, "direct", count, top)


def _stored_source(session: Session, mode: str, last: int) -> FactSource:
    return FactSource(
        CASE_TABLE,
        EVENT_TABLE,
        HOLD_TABLE,
        mode,
        0,
        last,
        cube=True,
        latest=_latest(session, EVENT_TABLE),
    )


def _latest(session: Session, table: Table) -> datetime | None:
    value: datetime | None = session.scalar(select(func.max(table.c.at)))
    if value is not None and value.tzinfo is None:  # SQLite through a bare Table column
        value = value.replace(tzinfo=UTC)
    return value


def _case_count(session: Session) -> int:
    return session.scalar(select(func.count(Case.id))) or 0
