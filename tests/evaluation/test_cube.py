"""The monthly cube answers whole months; the fact rows answer the days around them; both
together equal the fact rows alone — for any period, while the timeline keeps growing."""

from __future__ import annotations

import pytest

from cityloop.evaluation import rollup, service
from cityloop.evaluation.models import CubeRow
from tests.evaluation.helpers import Story, at
from tests.evaluation.test_indicators import september

NOW = at(12, 12, month=10)


def _everything(story: Story, period: str, now, mode: str) -> tuple[str, dict]:
    ctx = story.context(period, now=now, mode=mode)
    out = {"rates": service.rates(ctx)["items"]}
    for kind in ("inspectors", "operators", "shiftleads", "dispatchers", "departments"):
        out[kind] = service.table(ctx, kind)
    out["regions"] = service.regions_by_level(ctx, list(service.LEVEL_LABELS))
    return ctx.source.mode, out


@pytest.mark.parametrize(
    ("period", "now"),
    [
        ("2026-09", NOW),  # a whole month from the cube
        ("2026-08-20..2026-10-05", NOW),  # edges from the rows, September from the cube
        ("2026-10", NOW),  # the running month: no event after now, the cube answers it
        ("2026-09", at(30, 12)),  # events after "now": September from the rows
        ("2026", NOW),
        ("2026-W38", NOW),
    ],
)
def test_cube_and_rows_agree(story: Story, city_session, period, now):
    september(story)
    rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    assert city_session.query(CubeRow).count() > 0
    mode, stored = _everything(story, period, now, "auto")
    assert mode == "rollup"
    assert stored == _everything(story, period, now, "direct")[1]


def test_deltas_follow_cases_that_change_later(story: Story, city_session):
    """A September case handled in October moves September's and October's sums; between
    two refreshes the changed case is taken out of the cube and put back fresh."""
    ids = september(story)
    rollup.refresh(city_session, calendar=story.calendar, now=NOW)
    j = ids["J"]  # the leader's case, filed in September, waiting for dispatch
    story.act(
        j, "dispatch", "dispatcher", at(12, 9, month=10), department_id=story.department("D-350203")
    )
    story.act(
        j, "submit_result", "handler", at(12, 10, month=10), result="已处置", method="management"
    )
    story.act(j, "approve_result", "dispatcher", at(12, 10, 5, month=10))
    story.act(j, "report_check", "inspector", at(12, 10, 50, month=10), passed=True)
    story.act(j, "close", "shiftlead", at(12, 11, month=10))
    later = at(13, 9, month=10)
    for period in ("2026-09", "2026-10", "2026-Q4"):
        mode, fresh = _everything(story, period, later, "auto")
        assert mode == "rollup+fresh"
        assert fresh == _everything(story, period, later, "direct")[1]
    rollup.refresh(city_session, calendar=story.calendar, now=later)
    for period in ("2026-09", "2026-10"):
        mode, stored = _everything(story, period, later, "auto")
        assert mode == "rollup"
        assert stored == _everything(story, period, later, "direct")[1]
    october = {
        i["key"]: i["value"] for i in _everything(story, "2026-10", later, "auto")[1]["rates"]
    }
    assert october["closed"] == 3 and october["method_management"] == 1
    rebuilt = city_session.query(CubeRow).count()
    rollup.rebuild(city_session, calendar=story.calendar, now=later)
    assert city_session.query(CubeRow).count() == rebuilt  # deltas left no stray rows
