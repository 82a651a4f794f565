"""The rollups follow the timeline (the worker's `refresh`): nothing twice, nothing missed
when a transaction commits after a later one, everything again when the stage limits or the
calendar change."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from bench.synthetic_history import CaseSpec, Grid, Step
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.cases.models import CaseEvent
from cityloop.cli import app
from cityloop.evaluation import rollup, service
from cityloop.evaluation.models import RollupState
from cityloop.places.models import UnitGrid
from cityloop.taxonomy.models import StageLimit
from tests.evaluation.helpers import Story, at

NOW = at(12, 12, month=10)


def _figures(story: Story, mode: str) -> dict:
    ctx = story.context("2026-09", now=NOW, mode=mode)
    return {
        "rates": service.rates(ctx, compare=False)["values"],
        "departments": service.table(ctx, "departments"),
        "inspectors": service.table(ctx, "inspectors"),
    }


def _closed_case(story: Story, day: int, class_code: str = "06010") -> int:
    case_id = story.report(at(day, 9), class_code=class_code)
    story.handle(case_id, at(day, 9, 10), submit=at(day, 15), close=at(day + 1, 10))
    return case_id


def test_refresh_reads_each_event_once(story: Story, city_session):
    _closed_case(story, 2)
    first = rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    assert first.rebuilt and first.cases == 1
    assert rollup.refresh(city_session, calendar=story.calendar, now=NOW).cases == 0
    _closed_case(story, 3, "09006")
    again = rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    assert (again.cases, again.rebuilt) == (1, False)
    assert _figures(story, "rollup") == _figures(story, "direct")


def test_an_event_committed_late_is_not_lost(story: Story, city_session):
    """Event ids are handed out before commit: a transaction may commit an id below one the
    refresh already read. The refresh keeps the missing id and reads it when it appears."""
    _closed_case(story, 2)
    rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    state = city_session.get(RollupState, rollup.STATE_ID)
    watermark = state.last_event_id
    grid_row = city_session.scalars(select(UnitGrid).order_by(UnitGrid.code).limit(1)).one()
    grid = Grid(
        grid_row.code,
        grid_row.community_code,
        grid_row.resp_grid_code,
        grid_row.centroid_lon,
        grid_row.centroid_lat,
    )

    def spec(day: int) -> CaseSpec:
        return CaseSpec(
            source="inspector",
            class_code="07001",
            grid=grid,
            lon=grid.lon,
            lat=grid.lat,
            reporter=story.actors["inspector"],
            created_at=at(day, 9),
            description="小广告",
            steps=[Step("file", story.actors["operator"], at(day, 9, 5))],
        )

    # The later transaction (ids watermark+2…) commits first …
    import bench.synthetic_history as bulk

    writer = bulk.BulkWriter(city_session, hash_chain=True)
    writer.next_event = watermark + 2
    writer.add(*bulk.Simulator(bulk.CityInfo(city_session)).run(spec(4)))
    writer.finish()
    seen = rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    gaps = [gap[0] for gap in city_session.get(RollupState, 1).gaps]
    assert seen.cases == 1 and watermark + 1 in gaps
    # … then the earlier one, with the id the refresh had to skip.
    writer = bulk.BulkWriter(city_session, hash_chain=True)
    writer.next_event = watermark + 1
    writer.add(
        *bulk.Simulator(bulk.CityInfo(city_session)).run(
            CaseSpec(**{**spec(5).__dict__, "steps": []})
        )
    )
    writer.finish()
    assert rollup.dirty_case_ids(city_session)  # readers see it at once
    late = rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    assert late.cases == 1
    assert watermark + 1 not in [gap[0] for gap in city_session.get(RollupState, 1).gaps]
    assert _figures(story, "rollup") == _figures(story, "direct")
    assert _figures(story, "rollup")["rates"]["reports"] == 3


def test_a_gap_that_never_fills_is_forgotten(story: Story, city_session):
    _closed_case(story, 2)
    rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    row = city_session.get(RollupState, rollup.STATE_ID)
    row.gaps = [[10**9, NOW.isoformat()]]  # an id a rolled-back insert used up
    city_session.flush()
    rollup.refresh(city_session, calendar=story.calendar, now=NOW + timedelta(minutes=5))
    assert [g[0] for g in city_session.get(RollupState, 1).gaps] == [10**9]
    rollup.refresh(city_session, calendar=story.calendar, now=NOW + timedelta(hours=1))
    assert city_session.get(RollupState, 1).gaps == []


def test_new_stage_limits_mean_new_rows(story: Story, city_session):
    """Rows remember whether a stage ended in time; with another limit they are derived
    again (readers fall back to the timeline until the worker has rebuilt them)."""
    case_id = story.report(at(2, 9), source="public", class_code="09006")
    story.act(case_id, "send_to_verify", "operator", at(2, 9, 5))
    story.act(case_id, "verify", "inspector", at(2, 9, 50), confirmed=True)  # 45 minutes
    rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    before = story.table("inspectors", "2026-09", now=NOW, mode="auto")["inspector"]
    assert (before["verify_due"], before["verify_on_time"]) == (1, 1)
    city_session.get(StageLimit, "verify").working_minutes = 30
    city_session.flush()
    ctx = story.context("2026-09", now=NOW, mode="auto")
    assert ctx.source.mode == "direct"
    after = {r["key"]: r for r in service.table(ctx, "inspectors")}["inspector"]
    assert after["verify_on_time"] == 0
    assert rollup.refresh(city_session, calendar=story.calendar, now=NOW).rebuilt
    assert story.context("2026-09", now=NOW, mode="auto").source.mode == "rollup"


def test_cli_refresh_and_report(story: Story, city_session, city_engine, tmp_path):
    """`cityloop evaluation-refresh` and `cityloop evaluation-report --period … --out …`."""
    if city_engine.dialect.name != "sqlite":
        return  # one backend is enough for the command line; its queries are tested above
    source = city_engine.url.database
    copy = tmp_path / "city.db"
    shutil.copy(source, copy)
    url = f"sqlite:///{copy}"
    from cityloop.db import make_engine

    engine = make_engine(url)
    with Session(engine) as session:
        other = Story(session, story.places, tmp_path / "media")
        _closed_case(other, 2)
        session.commit()
    engine.dispose()
    runner = CliRunner()
    refreshed = runner.invoke(app, ["evaluation-refresh", "--db", url])
    assert refreshed.exit_code == 0, refreshed.output
    assert "1 cases" in refreshed.output
    out = tmp_path / "reports" / "2026-09.xlsx"
    made = runner.invoke(
        app, ["evaluation-report", "--period", "2026-09", "--out", str(out), "--db", url]
    )
    assert made.exit_code == 0, made.output
    book = load_workbook(out)
    assert book["专业部门"]["B3"].value == "思明区城市管理办公室"
    bad = runner.invoke(
        app, ["evaluation-report", "--period", "09/2026", "--out", str(out), "--db", url]
    )
    assert bad.exit_code == 2 and "period" in bad.output


def test_the_worker_keeps_the_rollups_up_to_the_timeline(
    story: Story, city_session, city_engine, tmp_path
):
    """`cityloop worker` refreshes the rollups on every pass: the month's figures are read
    from them up to the newest event, with no one running `evaluation-refresh` (R-EV-1)."""
    if city_engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough for the command line; its queries are tested above")
    copy = tmp_path / "city.db"
    shutil.copy(city_engine.url.database, copy)
    url = f"sqlite:///{copy}"
    from cityloop.db import make_engine

    engine = make_engine(url)
    with Session(engine) as session:
        other = Story(session, story.places, tmp_path / "media")
        _closed_case(other, 2)
        _closed_case(other, 3, "09006")
        session.commit()
        top = session.scalar(select(func.max(CaseEvent.id)))
    runner = CliRunner()
    passed = runner.invoke(app, ["worker", "--once", "--db", url])
    assert passed.exit_code == 0, passed.output
    assert f"up to event {top}" in passed.output
    with Session(engine) as session:
        state = session.get(RollupState, rollup.STATE_ID)
        assert state is not None and state.last_event_id == top
    engine.dispose()


def test_a_reader_never_derives_too_much(story: Story, city_session, monkeypatch, client, auth):
    """Beyond the derive limit a request counts the stored rows and says so, or asks for the
    rollups to be built, instead of deriving the whole city while the user waits."""
    monkeypatch.setattr(rollup, "DERIVE_LIMIT", 1)
    _closed_case(story, 2)
    _closed_case(story, 3, "09006")
    city_session.commit()
    response = client.get(
        "/api/v1/evaluation/rates", params={"period": "2026-09"}, headers=auth("admin")
    )
    assert response.status_code == 409 and response.json()["field"] == "rollups"
    rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    _closed_case(story, 7, "07001")
    _closed_case(story, 8, "09005")
    assert story.context("2026-09", now=NOW, mode="auto").source.mode == "rollup-behind"
    city_session.get(StageLimit, "check").working_minutes = 45
    city_session.flush()
    assert story.context("2026-09", now=NOW, mode="auto").source.mode == "rollup-stale"
