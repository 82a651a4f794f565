"""A published bulletin reproduced from timelines (R-EV-3): 天门, December 2016 —
应结案 972, 结案 911 → 结案率 93.72 %; 按期结案 737 → 按期结案率 75.82 %
(standards/cn_standards.md §5.1 [S60]).

The 972 cases are written in bulk by bench/synthetic_history.py's writer, whose rows are the
rows transition() writes (tests/evaluation/test_bulk_shape.py); the month is September 2026.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from bench.synthetic_history import CaseSpec, CityInfo, Grid, Step, write_cases
from openpyxl import load_workbook
from sqlalchemy import select

from cityloop.evaluation import rollup, service
from cityloop.evaluation.report import workbook_bytes
from cityloop.evaluation.worktime import WorkTime
from cityloop.places.models import UnitGrid
from tests.evaluation.helpers import YINGCUI, Story, at

NOW = at(9, 12, month=10)


def _specs(story: Story) -> list[CaseSpec]:
    info = CityInfo(story.session)
    work = WorkTime(story.calendar)
    grids = [
        Grid(code, community, resp, lon, lat)
        for code, community, resp, lon, lat in story.session.execute(
            select(
                UnitGrid.code,
                UnitGrid.community_code,
                UnitGrid.resp_grid_code,
                UnitGrid.centroid_lon,
                UnitGrid.centroid_lat,
            )
            .where(UnitGrid.community_code == YINGCUI)
            .order_by(UnitGrid.code)
        ).all()
    ]
    a = story.actors
    siming = story.department("D-350203")
    workdays = [d for d in range(1, 31) if story.calendar.is_workday(at(d, 9).date())]
    specs = []

    def spec(index: int, start: datetime, outcome: str) -> CaseSpec:
        grid = grids[index % len(grids)]
        minutes = lambda t, m: work.deadline(t, m)  # noqa: E731
        filed = minutes(start, 5)
        dispatched = minutes(filed, 5)
        due = work.deadline(dispatched, 2 * story.calendar.minutes_per_day)  # urgency B
        steps = [
            Step("file", a["operator"], filed),
            Step("dispatch", a["dispatcher"], dispatched, {"department_id": siming}),
        ]
        if outcome == "open":
            return _spec(grid, a, start, steps)
        submitted = minutes(dispatched, 300) if outcome == "on_time" else minutes(due, 200)
        steps.append(
            Step(
                "submit_result",
                a["handler"],
                submitted,
                {"result": "已处置", "method": "service", "photos": [story.photo]},
            )
        )
        if outcome == "submitted":
            return _spec(grid, a, start, steps)
        approved, checked = minutes(submitted, 5), minutes(submitted, 40)
        steps += [
            Step("approve_result", a["dispatcher"], approved),
            Step(
                "report_check", a["inspector"], checked, {"passed": True, "photos": [story.photo]}
            ),
            Step("close", a["operator"], minutes(checked, 10)),
        ]
        assert (steps[-1].at <= due) == (outcome == "on_time")
        return _spec(grid, a, start, steps)

    # 737 closed on time and 174 closed late within September; 61 due in September and not
    # closed by its end (20 of them handled, waiting for the check).
    plan = ["on_time"] * 737 + ["late"] * 174 + ["submitted"] * 20 + ["open"] * 41
    for index, outcome in enumerate(plan):
        if outcome in ("on_time",):
            day = workdays[index % (len(workdays) - 2)]
        elif outcome == "late":
            day = workdays[index % (len(workdays) - 6)]
        else:
            day = workdays[-4 + index % 2]  # 24 / 28 Sep: due before 1 Oct, never closed
        specs.append(spec(index, at(day, 8, 40) + timedelta(minutes=index % 180), outcome))
    assert info.handling_days("06010", "B") == 2
    return specs


def _spec(grid: Grid, actors: dict, start: datetime, steps: list[Step]) -> CaseSpec:
    return CaseSpec(
        source="inspector",
        class_code="06010",
        grid=grid,
        lon=grid.lon,
        lat=grid.lat,
        reporter=actors["inspector"],
        created_at=start,
        description="暴露垃圾",
        steps=steps,
    )


def test_the_tianmen_bulletin(story: Story, city_session):
    write_cases(city_session, _specs(story), hash_chain=True)
    ctx = story.context("2026-09", now=NOW)  # straight from the timeline
    rates = service.rates(ctx, compare=False)["values"]
    assert (rates["due"], rates["closed"], rates["closed_on_time"]) == (972, 911, 737)
    assert round(rates["closure_rate"] * 100, 2) == 93.72
    assert round(rates["on_time_closure_rate"] * 100, 2) == 75.82
    assert rates["handled"] == 931 and rates["overdue_open"] == 61

    department = {r["key"]: r for r in service.table(ctx, "departments")}["D-350203"]
    assert (department["due"], department["closed"], department["closed_on_time"]) == (
        972,
        911,
        737,
    )
    assert department["overdue_unhandled"] == 41

    # The workbook says the same, formatted as a bulletin does.
    book = load_workbook(io.BytesIO(workbook_bytes(ctx)))
    sheet = book["综合指标"]
    values = {row[0].value: row[1] for row in sheet.iter_rows(min_row=3) if row[0].value}
    assert values["结案率"].value == pytest.approx(0.9372, abs=5e-5)
    assert values["结案率"].number_format == "0.00%"
    assert values["按期结案率"].value == pytest.approx(0.7582, abs=5e-5)
    assert values["应结案数"].value == 972


def test_rollups_equal_the_direct_computation(story: Story, city_session):
    """The worker's rollups, refreshed in steps while the timeline grows, give the same
    figures as a computation straight from the timeline."""
    specs = _specs(story)
    calendar = story.calendar
    write_cases(city_session, specs[:400], hash_chain=True)
    first = rollup.refresh(city_session, calendar=calendar, now=NOW)
    assert first.cases == 400
    write_cases(city_session, specs[400:], hash_chain=True)
    # New events on cases the rollups already hold: one of the open ones gets closed.
    lone = story.report(at(29, 9), class_code="07001")
    story.handle(lone, at(29, 9, 10), submit=at(29, 15), close=at(30, 10))
    second = rollup.refresh(city_session, calendar=calendar, now=NOW)
    assert second.cases == len(specs) - 400 + 1 and not second.rebuilt

    def everything(mode: str) -> dict:
        ctx = story.context("2026-09", now=NOW, mode=mode)
        out = {"rates": service.rates(ctx)["items"]}
        for kind in ("inspectors", "operators", "shiftleads", "dispatchers", "departments"):
            out[kind] = service.table(ctx, kind)
        out["regions"] = service.regions_by_level(ctx, list(service.LEVEL_LABELS))
        assert ctx.source.mode == ("rollup" if mode == "auto" else mode)
        return out

    direct, stored = everything("direct"), everything("auto")
    assert stored == direct
    assert direct["rates"][5]["value"] == 973  # 应结案: the 972 and the lone case

    # A change after the last refresh is seen at once: the fresh case is derived on the spot.
    late = story.report(at(30, 9), class_code="09005")
    story.handle(late, at(30, 9, 10), submit=at(30, 11), close=at(30, 12))
    ctx = story.context("2026-09", now=NOW, mode="auto")
    assert ctx.source.mode == "rollup+fresh" and ctx.source.derived_cases == 1
    assert service.rates(ctx)["values"]["closed"] == 913
