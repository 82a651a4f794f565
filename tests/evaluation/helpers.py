"""Helpers for evaluation tests: build timelines through the real services with explicit
times, and read the evaluation back."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import PUBLIC, Actor, transition
from cityloop.cases.states import BY_ACTION
from cityloop.evaluation import service
from cityloop.evaluation.periods import parse_period
from cityloop.intake.service import Report, receive
from cityloop.media.service import store_photo
from cityloop.org.models import Department, User
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar
from tests.conftest import TZ, jpeg_bytes

YINGCUI = "350203011003"  # 盈翠社区, 嘉莲街道 (the demo inspector's street), 思明区
JIANGTOU = "350206004"  # 江头街道, 湖里区 (inspector_huli's street)
CITIZEN_SOURCES = ("public", "wechat", "app", "web")


def at(day: int, hour: int, minute: int = 0, *, month: int = 9, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


class Story:
    """Cases told through intake.receive() and cases.service.transition(), minute by minute."""

    def __init__(self, session: Session, places: PlaceIndex, media_dir: Path) -> None:
        self.session = session
        self.places = places
        self.calendar = working_calendar(session)
        self.actors = {u.username: Actor.of(u) for u in session.scalars(select(User))}
        self.photo = store_photo(
            session, jpeg_bytes(), "evidence.jpg", directory=media_dir, now=at(1, 8)
        ).id
        self._next_grid: dict[str, int] = {}

    def department(self, code: str) -> int:
        found = self.session.scalar(select(Department.id).where(Department.code == code))
        assert found is not None, code
        return found

    def point(self, community: str) -> tuple[float, float]:
        """A point in a unit grid of the community no earlier case used (cases of the same
        class within 50 m would be merged as duplicates)."""
        grids = sorted(self.places.unit_grids_of(community), key=lambda g: g.code)
        if not grids:  # a street code: use its communities' grids
            grids = sorted(
                (
                    g
                    for region in self.places.regions("community")
                    if region.code.startswith(community)
                    for g in self.places.unit_grids_of(region.code)
                ),
                key=lambda g: g.code,
            )
        index = self._next_grid.get(community, 0)
        self._next_grid[community] = index + 2
        point = grids[index % len(grids)].geometry.representative_point()
        return point.x, point.y

    def report(
        self,
        when: datetime,
        *,
        source: str = "inspector",
        by: str | None = None,
        community: str = YINGCUI,
        class_code: str = "06010",
        urgency: str | None = None,
    ) -> int:
        if by is None:
            by = {"inspector": "inspector", "leader": "leader"}.get(source)
            if by is None and source not in CITIZEN_SOURCES:
                by = "operator"
        actor = self.actors[by] if by else PUBLIC
        lon, lat = self.point(community)
        case, created = receive(
            self.session,
            Report(
                source=source,
                class_code=class_code,
                description="测试案卷",
                lon=lon,
                lat=lat,
                urgency=urgency,
            ),
            actor=actor,
            places=self.places,
            calendar=self.calendar,
            now=when,
        )
        assert created and case.state != "merged", "the point was taken as a duplicate"
        return case.id

    def act(self, case_id: int, action: str, by: str, when: datetime, **payload: Any) -> Case:
        if "photos" in BY_ACTION[action].required and "photos" not in payload:
            payload["photos"] = [self.photo]
        actor = self.actors[by] if by != "system" else Actor(None, "系统", "system")
        return transition(
            self.session, case_id, action, actor, payload, now=when, calendar=self.calendar
        )

    def run(self, case_id: int, steps: list[tuple[str, str, datetime, dict[str, Any]]]) -> Case:
        case = None
        for action, by, when, payload in steps:
            case = self.act(case_id, action, by, when, **payload)
        assert case is not None
        return case

    def handle(
        self,
        case_id: int,
        start: datetime,
        *,
        department: str = "D-350203",
        submit: datetime,
        close: datetime,
        handler: str = "handler",
        method: str = "service",
    ) -> Case:
        """file (if needed) → dispatch at `start` → result at `submit` → approve → check →
        close at `close` (each step a few minutes apart)."""
        from datetime import timedelta

        case = self.session.get(Case, case_id)
        assert case is not None
        if case.state in ("pending_filing", "reported"):
            self.act(case_id, "file", "operator", start - timedelta(minutes=5))
        self.act(
            case_id, "dispatch", "dispatcher", start, department_id=self.department(department)
        )
        self.act(case_id, "submit_result", handler, submit, result="已处置", method=method)
        self.act(case_id, "approve_result", "dispatcher", submit + timedelta(minutes=5))
        self.act(case_id, "report_check", "inspector", close - timedelta(minutes=5), passed=True)
        return self.act(case_id, "close", "operator", close)

    # -- reading ------------------------------------------------------------------------
    def context(
        self, period: str, *, now: datetime, by: str = "admin", mode: str = "direct"
    ) -> service.Context:
        self.session.flush()
        return service.context(
            self.session,
            parse_period(period),
            actor=self.actors[by],
            now=now,
            calendar=self.calendar,
            kind="report",
            mode=mode,
        )

    def table(
        self, kind: str, period: str, *, now: datetime, level: str = "street", mode: str = "direct"
    ) -> dict[str, dict[str, Any]]:
        ctx = self.context(period, now=now, mode=mode)
        return {row["key"]: row for row in service.table(ctx, kind, level=level)}

    def rates(self, period: str, *, now: datetime, mode: str = "direct") -> dict[str, Any]:
        ctx = self.context(period, now=now, mode=mode)
        values: dict[str, Any] = service.rates(ctx, compare=False)["values"]
        return values
