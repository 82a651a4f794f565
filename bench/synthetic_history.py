"""Synthetic case history for benchmarks (and for tests that need many cases at once).

Driving a million cases through `intake.receive()` / `cases.service.transition()` would take
hours, so this module writes the rows directly — but rows shaped exactly as those services
write them: the same case columns (state, version, stage clock, deadlines, department,
result method, …), the same events (action, from/to state, actor, department, payload keys
and values, photos), the same deadlines from the working calendar (`Simulator` mirrors the
effects of `cases.service`; `tests/evaluation/test_bulk_shape.py` holds the two equal).

The one difference: the hash chain. `BulkWriter(hash_chain=False)` (the benchmark) writes a
placeholder in `prev_hash` / `hash`, so `cityloop verify-audit` reports those rows as changed;
`hash_chain=True` (the tests) computes the real chain.

`generate()` makes a realistic history over the demo city: sources, classes, hot spots,
hours of the day, verification, returns, pass-downs, postponements, late handling with the
sweep's overdue marks and automatic urging, send-backs, failed checks and rework, return
visits; cases reported near the end are left open at whatever stage they reached.

Run: .venv/bin/python bench/synthetic_history.py --db URL --cases 100000 (see
bench/bench_evaluation.py for the benchmark itself).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from cityloop.cases.audit import GENESIS, event_digest, hashed_fields
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import SYSTEM, Actor
from cityloop.cases.states import BY_ACTION, STATE_STAGE
from cityloop.evaluation.worktime import WorkTime
from cityloop.intake.service import initial_state
from cityloop.kit.calendar import WorkingCalendar
from cityloop.kit.geo import h3_cell
from cityloop.org.models import Department, User
from cityloop.org.service import responsible_department
from cityloop.places.models import Region, UnitGrid
from cityloop.taxonomy.models import ProblemClass
from cityloop.taxonomy.service import stage_limits, working_calendar

PLACEHOLDER_HASH = "0" * 64
_CLOCK_RESTARTING = {"rework", "return_visit", "send_back", "dispatch", "pass_down", "assign_proxy"}
_TICKET_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass
class Grid:
    code: str
    community: str
    resp_grid: str | None
    lon: float
    lat: float

    @property
    def street(self) -> str:
        return self.community[:9]

    @property
    def district(self) -> str:
        return self.community[:6]


@dataclass
class Step:
    """One action (or a clock note) on the timeline."""

    action: str
    actor: Actor
    at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseSpec:
    source: str
    class_code: str
    grid: Grid
    lon: float
    lat: float
    reporter: Actor
    created_at: datetime
    description: str
    steps: list[Step]
    urgency: str | None = None
    photos: list[str] = field(default_factory=list)


class CityInfo:
    """What the simulator needs to know about the city, loaded once."""

    def __init__(self, session: Session) -> None:
        self.calendar: WorkingCalendar = working_calendar(session)
        self.worktime = WorkTime(self.calendar)
        self.limits = stage_limits(session)
        self.classes = {
            c.code: c
            for c in session.scalars(select(ProblemClass).where(ProblemClass.level == "minor"))
        }
        self.departments = {d.id: d for d in session.scalars(select(Department))}
        self.department_by_code = {d.code: d for d in self.departments.values()}
        rows = session.execute(
            select(
                UnitGrid.code,
                UnitGrid.community_code,
                UnitGrid.resp_grid_code,
                UnitGrid.centroid_lon,
                UnitGrid.centroid_lat,
            ).order_by(UnitGrid.code)
        ).all()
        self.grids = [Grid(*row) for row in rows]
        self.streets = sorted({g.street for g in self.grids})
        self.region_names = dict(session.execute(select(Region.code, Region.name)).all())
        self._session = session
        self._responsible: dict[tuple[str, str], Department | None] = {}

    def responsible(self, class_code: str, grid: Grid) -> Department | None:
        key = (class_code, grid.community)
        if key not in self._responsible:
            places = [grid.district, grid.street, grid.community, grid.resp_grid, grid.code]
            self._responsible[key] = responsible_department(
                self._session, class_code, [p for p in places if p]
            )
        return self._responsible[key]

    def handling_days(self, class_code: str, urgency: str) -> float:
        limits = self.classes[class_code].handling_days or {}
        return float(limits.get(urgency, {"A": 1, "B": 2, "C": 4}[urgency]))


def _iso(value: datetime) -> str:
    # What a request served by the wall clock (UTC) writes into a payload.
    return value.astimezone(UTC).isoformat()


class Simulator:
    """The case row and the events `transition()` would write for a `CaseSpec`."""

    def __init__(self, info: CityInfo) -> None:
        self.info = info

    def _restart_clock(self, case: dict[str, Any], now: datetime) -> None:
        stage = STATE_STAGE.get(case["state"])
        case["stage"] = stage
        case["stage_started_at"] = now if stage else None
        case["warned_stage"] = None
        case["overdue_stage"] = None
        if stage is None:
            case["stage_due_at"] = None
        elif stage == "handle":
            case["stage_due_at"] = case["due_at"]
        else:
            case["stage_due_at"] = self.info.worktime.deadline(now, self.info.limits.get(stage, 60))

    def _handling_due(self, case: dict[str, Any], start: datetime) -> datetime:
        days = self.info.handling_days(case["class_code"], case["urgency"])
        return self.info.worktime.deadline(start, days * self.info.calendar.minutes_per_day)

    def run(self, spec: CaseSpec) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        info = self.info
        problem_class = info.classes[spec.class_code]
        now = spec.created_at
        state = initial_state(spec.source)
        case: dict[str, Any] = {
            "ticket": "",
            "idempotency_key": None,
            "source": spec.source,
            "class_code": problem_class.code,
            "kind": problem_class.kind,
            "class_confirmed": True,
            "description": spec.description,
            "address": None,
            "lon": spec.lon,
            "lat": spec.lat,
            "h3_cell": h3_cell(spec.lon, spec.lat),
            "unit_grid": spec.grid.code,
            "resp_grid": spec.grid.resp_grid,
            "community": spec.grid.community,
            "street": spec.grid.street,
            "district": spec.grid.district,
            "urgency": spec.urgency or problem_class.default_urgency,
            "state": state,
            "version": 1,
            "department_id": None,
            "leader_assigned": spec.source == "leader",
            "component_id": None,
            "merged_into_id": None,
            "reporter_name": None,
            "reporter_phone": None,
            "reporter_user_id": spec.reporter.user_id,
            "created_at": now,
            "updated_at": now,
            "filed_at": now if state == "filed" else None,
            "received_at": None,
            "due_at": None,
            "closed_at": None,
            "suspended_from": None,
            "suspended_remaining_minutes": None,
            "postpone_request": None,
            "result_method": None,
            "check_passed": None,
            "rework_count": 0,
            "satisfied": None,
        }
        self._restart_clock(case, now)
        events = [
            self._event(
                case,
                spec.reporter,
                "report",
                None,
                state,
                now,
                {
                    "source": spec.source,
                    "class_code": problem_class.code,
                    "urgency": case["urgency"],
                    "leader_assigned": case["leader_assigned"],
                },
                list(spec.photos),
            )
        ]
        for step in spec.steps:
            before = dict(case)
            events.append(self._apply(case, step))
            # SQLAlchemy bumps the version counter only when the row really changes (the
            # sweep's urge in the same minute as its overdue mark changes nothing).
            if case != before:
                case["version"] = before["version"] + 1
        return case, events

    def _event(
        self,
        case: dict[str, Any],
        actor: Actor,
        action: str,
        from_state: str | None,
        to_state: str,
        at: datetime,
        payload: dict[str, Any],
        photos: list[Any],
    ) -> dict[str, Any]:
        return {
            "at": at,
            "actor_id": actor.user_id,
            "actor_name": actor.name,
            "actor_role": actor.role,
            "action": action,
            "from_state": from_state,
            "to_state": to_state,
            "department_id": case["department_id"],
            "payload": payload,
            "photos": photos,
        }

    def _receive(
        self, case: dict[str, Any], notes: dict[str, Any], dept_id: int, now: datetime
    ) -> None:
        case["department_id"] = dept_id
        case["received_at"] = now
        notes["department_id"] = dept_id
        notes["department_name"] = self.info.departments[dept_id].name

    def _apply(self, case: dict[str, Any], step: Step) -> dict[str, Any]:
        now, action = step.at, step.action
        payload = dict(step.payload)
        photos = payload.pop("photos", []) or []
        if action not in BY_ACTION:  # a clock note of the sweep
            case["updated_at"] = now
            stage = payload.get("stage")
            if action == "clock_overdue":
                case["overdue_stage"] = case["warned_stage"] = stage
            elif action == "clock_warning":
                case["warned_stage"] = stage
            return self._event(
                case, step.actor, action, case["state"], case["state"], now, payload, photos
            )
        row = BY_ACTION[action]
        from_state = case["state"]
        target = row.targets[0] if len(row.targets) == 1 else None
        if target == "__same__":
            target = from_state
        notes: dict[str, Any] = {}
        if action == "file":
            case["filed_at"] = now
            case["class_confirmed"] = True
        elif action == "merge":
            case["merged_into_id"] = payload["into_case_id"]
            notes["into_ticket"] = payload.pop("_into_ticket", "")
        elif action in ("dispatch", "pass_down", "assign_proxy"):
            if action == "assign_proxy":
                notes["owner_department_id"] = case["department_id"]
            self._receive(case, notes, int(payload["department_id"]), now)
            if action == "dispatch":
                case["due_at"] = self._handling_due(case, now)
                notes["due_at"] = _iso(case["due_at"])
        elif action == "return":
            notes["returned_by_department_id"] = case["department_id"]
            case["department_id"] = case["received_at"] = case["due_at"] = None
        elif action == "request_postpone":
            case["postpone_request"] = {
                "days": float(payload["days"]),
                "reason": payload["reason"],
                "requested_at": _iso(now),
                "by": step.actor.name,
            }
        elif action == "approve_postpone":
            days = float(case["postpone_request"]["days"])
            previous = case["due_at"] or now
            case["due_at"] = self.info.worktime.deadline(
                previous, days * self.info.calendar.minutes_per_day
            )
            case["stage_due_at"] = case["due_at"]
            case["warned_stage"] = case["overdue_stage"] = None
            case["postpone_request"] = None
            notes.update(
                {"days": days, "previous_due_at": _iso(previous), "due_at": _iso(case["due_at"])}
            )
        elif action == "refuse_postpone":
            notes["refused_days"] = (case["postpone_request"] or {}).get("days")
            case["postpone_request"] = None
        elif action in ("suspend", "resume", "unmerge"):
            raise NotImplementedError(f"the simulator does not write {action} yet")
        elif action == "submit_result":
            case["result_method"] = payload["method"]
            case["check_passed"] = None
        elif action == "report_check":
            case["check_passed"] = payload["passed"]
        elif action == "close":
            case["closed_at"] = now
            if case["due_at"] is not None:
                notes["on_time"] = now <= case["due_at"]
        elif action == "rework":
            case["rework_count"] += 1
            self._reopen(case, notes, now)
        elif action == "return_visit":
            case["satisfied"] = payload["satisfied"]
            if payload["satisfied"]:
                target = "archived"
            else:
                self._reopen(case, notes, now)
                target = "dispatched"
        assert target is not None, action
        case["state"] = target
        case["updated_at"] = now
        if target != from_state or action in _CLOCK_RESTARTING:
            self._restart_clock(case, now)
        return self._event(
            case, step.actor, action, from_state, target, now, {**payload, **notes}, photos
        )

    def _reopen(self, case: dict[str, Any], notes: dict[str, Any], now: datetime) -> None:
        case["received_at"] = now
        case["due_at"] = self._handling_due(case, now)
        case["check_passed"] = None
        case["closed_at"] = None
        notes["due_at"] = _iso(case["due_at"])
        notes["department_id"] = case["department_id"]


class BulkWriter:
    """Inserts simulated cases and their events with explicit ids, in batches."""

    def __init__(self, session: Session, *, hash_chain: bool, batch: int = 2000) -> None:
        self.session = session
        self.hash_chain = hash_chain
        self.batch = batch
        self.next_case = (session.scalar(select(func.max(Case.id))) or 0) + 1
        self.next_event = (session.scalar(select(func.max(CaseEvent.id))) or 0) + 1
        self.cases: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.written_cases = 0
        self.written_events = 0
        self._tickets = random.Random(self.next_case)
        self._issued: set[str] = set()

    def add(self, case: dict[str, Any], events: Sequence[dict[str, Any]]) -> int:
        case_id = self.next_case
        self.next_case += 1
        case = {**case, "id": case_id}
        while True:  # 6 random characters a day collide now and then over a million cases
            ticket = case["created_at"].strftime("%y%m%d") + "".join(
                self._tickets.choice(_TICKET_ALPHABET) for _ in range(6)
            )
            if ticket not in self._issued:
                self._issued.add(ticket)
                break
        case["ticket"] = ticket
        self.cases.append(case)
        prev = GENESIS
        for seq, event in enumerate(events, start=1):
            row = {**event, "id": self.next_event, "case_id": case_id, "seq": seq}
            self.next_event += 1
            if self.hash_chain:
                row["prev_hash"] = prev
                row["hash"] = prev = event_digest(prev, hashed_fields(CaseEvent(**row)))
            else:
                row["prev_hash"] = row["hash"] = PLACEHOLDER_HASH
            self.events.append(row)
        if len(self.cases) >= self.batch:
            self.flush()
        return case_id

    def flush(self) -> None:
        if self.cases:
            self.session.execute(insert(Case.__table__), self.cases)
            self.written_cases += len(self.cases)
        if self.events:
            self.session.execute(insert(CaseEvent.__table__), self.events)
            self.written_events += len(self.events)
        self.cases, self.events = [], []

    def finish(self) -> None:
        """Flush, and move PostgreSQL's id sequences past the ids written by hand."""
        self.flush()
        bind = self.session.get_bind()
        if bind.dialect.name == "postgresql":
            for table in ("cases", "case_events"):
                self.session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                    )
                )


def write_cases(
    session: Session, specs: Iterable[CaseSpec], *, hash_chain: bool = True
) -> list[int]:
    """Simulate and insert cases; returns their ids (the caller commits)."""
    info = CityInfo(session)
    simulator = Simulator(info)
    writer = BulkWriter(session, hash_chain=hash_chain)
    ids = [writer.add(*simulator.run(spec)) for spec in specs]
    writer.finish()
    return ids


# -- the realistic generator ---------------------------------------------------------------------
SOURCE_MIX = (
    ("inspector", 55),
    ("hotline_12345", 12),
    ("video", 8),
    ("wechat", 7),
    ("public", 5),
    ("app", 4),
    ("hotline_12319", 4),
    ("partner_12345", 2),
    ("sensor", 1),
    ("leader", 1),
    ("media", 1),
)
CLASS_MIX = (
    ("06010", "路边暴露垃圾，影响市容", 14),
    ("09006", "占道经营，水果摊占用人行道", 11),
    ("06042", "垃圾箱满溢，周边散落垃圾", 9),
    ("09005", "店外经营，餐馆桌椅摆到门外", 8),
    ("07001", "电线杆上张贴非法小广告", 8),
    ("09010", "非机动车乱停放，堵塞盲道", 7),
    ("06036", "楼道口乱堆杂物", 6),
    ("06011", "积存垃圾渣土", 5),
    ("01002", "污水井盖破损，存在安全隐患", 4),
    ("01037", "路灯不亮", 4),
    ("08004", "工地扬尘未覆盖", 3),
    ("06028", "夜间噪声扰民", 3),
    ("06001", "楼顶私搭乱建", 3),
    ("21004", "污水冒溢，污染路面", 2),
    ("21001", "暴雨后道路积水", 2),
    ("01003", "雨水井盖缺失", 2),
    ("04002", "行道树倒伏", 2),
    ("02006", "人行道板破损", 2),
    ("07003", "违规户外广告", 2),
    ("22002", "房屋违规分隔出租", 1),
)
# Reports per hour of day (local time): inspectors patrol in working hours, the public calls
# in the evening too, cameras see the whole day.
HOURS_STAFF = [0, 0, 0, 0, 0, 0, 1, 4, 9, 10, 10, 8, 3, 4, 9, 10, 9, 7, 3, 1, 0, 0, 0, 0]
HOURS_PUBLIC = [1, 1, 0, 0, 0, 1, 2, 5, 8, 9, 9, 8, 7, 6, 7, 8, 8, 8, 9, 10, 9, 7, 4, 2]
HOURS_DEVICE = [3, 2, 2, 2, 2, 3, 4, 6, 7, 7, 7, 7, 6, 6, 7, 7, 7, 7, 7, 7, 6, 5, 4, 3]


@dataclass
class Cast:
    """The people who act in generated histories (one inspector per street, a few of each
    centre role, one handler per department)."""

    inspectors: dict[str, Actor]
    operators: list[Actor]
    shiftleads: list[Actor]
    dispatchers: list[Actor]
    leaders: list[Actor]
    handlers: dict[int, Actor]
    admin: Actor


def ensure_cast(session: Session, info: CityInfo) -> Cast:
    """The demo users plus bench users (they cannot log in: no real password hash)."""
    users = {u.username: u for u in session.scalars(select(User))}
    new: list[dict[str, Any]] = []

    def want(username: str, role: str, name: str, dept: int | None, grids: list[str]) -> None:
        if username not in users:
            new.append(
                {
                    "username": username,
                    "display_name": name,
                    "password_hash": "!bench-user-no-login",
                    "role": role,
                    "department_id": dept,
                    "grid_codes": grids,
                    "active": True,
                }
            )

    centre = info.department_by_code.get("XM-CENTRE")
    centre_id = centre.id if centre else None
    for street in info.streets:
        want(
            f"bench_insp_{street}",
            "inspector",
            f"网格员 {info.region_names.get(street, street)}",
            None,
            [street],
        )
    for i in range(1, 9):
        want(f"bench_op_{i}", "operator", f"受理员 {i}号", centre_id, [])
    for i in range(1, 5):
        want(f"bench_sl_{i}", "shiftlead", f"值班长 {i}号", centre_id, [])
    for i in range(1, 7):
        want(f"bench_dp_{i}", "dispatcher", f"派遣员 {i}号", centre_id, [])
    for dept_id, dept in info.departments.items():
        if dept.kind != "centre":
            want(f"bench_h_{dept_id}", "handler", f"{dept.name} 处置员", dept_id, [])
    if new:
        session.execute(insert(User), new)
        session.flush()
    users = {u.username: u for u in session.scalars(select(User))}
    by_role: dict[str, list[Actor]] = {}
    for user in users.values():
        by_role.setdefault(user.role, []).append(Actor.of(user))
    inspectors = {street: Actor.of(users[f"bench_insp_{street}"]) for street in info.streets}
    for name in ("inspector", "inspector_huli"):
        user = users.get(name)
        if user is not None:
            for code in user.grid_codes or []:
                inspectors[str(code)[:9]] = Actor.of(user)
    handlers = {
        dept_id: Actor.of(users[f"bench_h_{dept_id}"])
        for dept_id, dept in info.departments.items()
        if dept.kind != "centre"
    }
    return Cast(
        inspectors=inspectors,
        operators=sorted(by_role.get("operator", []), key=lambda a: a.name),
        shiftleads=sorted(by_role.get("shiftlead", []), key=lambda a: a.name),
        dispatchers=sorted(by_role.get("dispatcher", []), key=lambda a: a.name),
        leaders=by_role.get("leader", []),
        handlers=handlers,
        admin=Actor.of(users["admin"]),
    )


class Generator:
    """Random, reproducible, realistic case histories."""

    def __init__(self, info: CityInfo, cast: Cast, *, seed: int, end: datetime) -> None:
        self.info, self.cast, self.end = info, cast, end
        self.rng = random.Random(seed)
        rng = self.rng
        # Hot spots: a few grids draw many more cases than the rest (log-normal popularity).
        weights = [math.exp(rng.gauss(0, 1.3)) for _ in info.grids]
        self.grid_cum = list(itertools.accumulate(weights))
        self.sources = [s for s, _ in SOURCE_MIX]
        self.source_cum = list(itertools.accumulate(w for _, w in SOURCE_MIX))
        usable = [c for c in CLASS_MIX if c[0] in info.classes]
        self.classes = usable
        self.class_cum = list(itertools.accumulate(w for *_, w in usable))
        self.photo = "bench-photo"

    def _pick(self, items: Sequence[Any], cum: Sequence[float]) -> Any:
        return items[bisect.bisect(cum, self.rng.random() * cum[-1])]

    def _minutes(self, at: datetime, low: float, high: float) -> datetime:
        return self.info.worktime.deadline(at, self.rng.uniform(low, high))

    def spec(self, day: date) -> CaseSpec:
        rng, info = self.rng, self.info
        source = self._pick(self.sources, self.source_cum)
        class_code, description, _ = self._pick(self.classes, self.class_cum)
        grid = self._pick(info.grids, self.grid_cum)
        hours = (
            HOURS_STAFF
            if source in ("inspector", "leader") or source.startswith("hotline")
            else HOURS_DEVICE
            if source in ("video", "sensor")
            else HOURS_PUBLIC
        )
        hour = rng.choices(range(24), hours)[0]
        created = datetime(
            day.year,
            day.month,
            day.day,
            hour,
            rng.randrange(60),
            rng.randrange(60),
            tzinfo=info.calendar.tz,
        )
        lon = grid.lon + rng.uniform(-0.0002, 0.0002)
        lat = grid.lat + rng.uniform(-0.0002, 0.0002)
        inspector = self.cast.inspectors.get(grid.street)
        if source == "inspector":
            reporter = inspector or self.cast.admin
        elif source == "leader":
            reporter = self.cast.leaders[0] if self.cast.leaders else self.cast.admin
        elif source in ("public", "wechat", "app"):
            reporter = Actor(None, "公众", "public")
        else:
            reporter = rng.choice(self.cast.operators)
        urgency = "A" if class_code in ("21004", "21001", "01003") else None
        spec = CaseSpec(
            source=source,
            class_code=class_code,
            grid=grid,
            lon=lon,
            lat=lat,
            reporter=reporter,
            created_at=created,
            description=description,
            steps=[],
            urgency=urgency,
            photos=[self.photo],
        )
        spec.steps = self._story(spec, inspector)
        return spec

    def _story(self, spec: CaseSpec, inspector: Actor | None) -> list[Step]:
        rng, info, cast = self.rng, self.info, self.cast
        steps: list[Step] = []
        at = spec.created_at
        operator = rng.choice(cast.operators)
        centre = rng.choice(cast.shiftleads) if rng.random() < 0.15 else operator
        dispatcher = rng.choice(cast.dispatchers)
        checker = inspector or cast.admin
        state = initial_state(spec.source)
        worktime = info.worktime

        def step(action: str, actor: Actor, when: datetime, **payload: Any) -> bool:
            if when >= self.end:
                return False
            steps.append(Step(action, actor, when, payload))
            return True

        if state == "reported":
            at = self._minutes(at, 3, 45)
            roll = rng.random()
            if roll < 0.02:
                step("reject", operator, at, reason="经核实不属于城市管理范围")
                return steps
            if not step("send_to_verify", operator, at):
                return steps
            at = self._minutes(at, 8, 95)
            if not step("verify", checker, at, confirmed=True, photos=[self.photo]):
                return steps
            state = "pending_filing"
        if state == "pending_filing":
            at = self._minutes(at, 2, 45)
            if rng.random() < 0.03:
                step("reject", operator, at, reason="不符合立案条件")
                return steps
            if not step("file", centre, at):
                return steps
        department = info.responsible(spec.class_code, spec.grid)
        if department is None:
            return steps
        at = self._minutes(at, 2, 45)
        if not step("dispatch", dispatcher, at, department_id=department.id):
            return steps
        urgency = spec.urgency or info.classes[spec.class_code].default_urgency
        window = info.handling_days(spec.class_code, urgency) * info.calendar.minutes_per_day
        received = at
        if rng.random() < 0.02:  # the department sends it back within the hour
            at = self._minutes(at, 5, 50)
            if not step("return", cast.handlers[department.id], at, reason="非本单位职责"):
                return steps
            others = [d for d in info.departments.values() if d.kind in ("professional", "utility")]
            department = rng.choice(others)
            at = self._minutes(at, 5, 40)
            if not step("dispatch", dispatcher, at, department_id=department.id):
                return steps
            received = at
        holder = department
        street_office = info.department_by_code.get(f"D-{spec.grid.street}")
        if (
            department.kind == "district_office"
            and street_office is not None
            and rng.random() < 0.3
        ):
            at = self._minutes(at, 3, 40)
            if not step(
                "pass_down", cast.handlers[department.id], at, department_id=street_office.id
            ):
                return steps
            holder = street_office
        handler = cast.handlers[holder.id]
        due = worktime.deadline(received, window)
        if rng.random() < 0.03:  # postponement asked and granted
            ask = self._minutes(at, 20, window * 0.5)
            if not step("request_postpone", handler, ask, days=2, reason="需协调施工"):
                return steps
            at = self._minutes(ask, 5, 50)
            if not step("approve_postpone", dispatcher, at):
                return steps
            due = worktime.deadline(due, 2 * info.calendar.minutes_per_day)
        rework_left = 1
        while True:
            late = rng.random() < 0.14
            span = worktime.minutes_between(at, due)
            if late or span <= 5:
                submit = self._minutes(due, 5, max(window * 0.8, 30))
                marked = worktime.deadline(due, 1) if due > at else at
                if marked < submit:
                    if not step(
                        "clock_overdue",
                        SYSTEM,
                        marked,
                        stage="handle",
                        due_at=_iso(due),
                        note="处置超期",
                    ):
                        return steps
                    if not step(
                        "urge", SYSTEM, marked, note="处置已超过期限，系统自动催办", automatic=True
                    ):
                        return steps
            else:
                submit = worktime.deadline(at, rng.uniform(0.1, 0.95) * span)
            method = rng.choices(("service", "management", "enforcement"), (7, 2, 1))[0]
            if not step(
                "submit_result",
                handler,
                submit,
                result="已处置完毕",
                method=method,
                photos=[self.photo],
            ):
                return steps
            at = self._minutes(submit, 5, 80)
            if rng.random() < 0.04:
                if not step("send_back", dispatcher, at, reason="处置照片不清晰"):
                    return steps
                at = self._minutes(at, 30, 300)
                if not step(
                    "submit_result",
                    handler,
                    at,
                    result="已重新处置",
                    method=method,
                    photos=[self.photo],
                ):
                    return steps
                at = self._minutes(at, 5, 60)
            if not step("approve_result", dispatcher, at):
                return steps
            at = self._minutes(at, 10, 100)
            passed = rework_left == 0 or rng.random() > 0.04
            if not step("report_check", checker, at, passed=passed, photos=[self.photo]):
                return steps
            at = self._minutes(at, 5, 80)
            if passed:
                break
            if not step("rework", centre, at, reason="核查未通过"):
                return steps
            rework_left -= 1
            due = worktime.deadline(at, window)
        if not step("close", centre, at):
            return steps
        if rng.random() < 0.3:
            at = self._minutes(at, 60, 900)
            step("return_visit", operator, at, satisfied=rng.random() < 0.95)
        return steps


def generate(
    session: Session,
    *,
    cases: int,
    first_day: date,
    last_day: date,
    seed: int = 20260901,
    hash_chain: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Write `cases` generated cases reported between the two days (the caller commits).

    Cases are spread over the days (weekdays busier) and driven as far as `last_day`'s end
    allows."""
    info = CityInfo(session)
    cast = ensure_cast(session, info)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), info.calendar.tz)
    gen = Generator(info, cast, seed=seed, end=end)
    simulator = Simulator(info)
    writer = BulkWriter(session, hash_chain=hash_chain, batch=5000)
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    day_weights = list(itertools.accumulate(1.0 if d.weekday() < 5 else 0.6 for d in days))
    started = time.perf_counter()
    # Case ids follow the reporting days, as they do in a running city.
    chosen = sorted(
        days[bisect.bisect(day_weights, gen.rng.random() * day_weights[-1])] for _ in range(cases)
    )
    for index, day in enumerate(chosen):
        writer.add(*simulator.run(gen.spec(day)))
        if progress and index and index % 50_000 == 0:
            rate = index / (time.perf_counter() - started)
            print(
                f"  {index:>9,} cases  "
                f"{writer.written_events + len(writer.events):>11,} events  {rate:,.0f} cases/s",
                flush=True,
            )
    writer.finish()
    return {
        "cases": writer.written_cases,
        "events": writer.written_events,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    from cityloop.db import make_engine
    from cityloop.models import load_all_models

    parser = argparse.ArgumentParser(description="Write a synthetic case history.")
    parser.add_argument("--db", required=True, help="database URL (schema and demo city exist)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--first-day", default="2025-01-01")
    parser.add_argument("--last-day", default="2026-12-31")
    args = parser.parse_args()
    load_all_models()
    engine = make_engine(args.db)
    with Session(engine) as session:
        result = generate(
            session,
            cases=args.cases,
            first_day=date.fromisoformat(args.first_day),
            last_day=date.fromisoformat(args.last_day),
            progress=True,
        )
        session.commit()
    print(result)


if __name__ == "__main__":
    main()
