"""Analytics (R-AN-2, R-AN-3) over the hand-told September of tests/evaluation: heat map and
hot spots, high incidence, time per stage and where cases wait, trends, the CSV export."""

from __future__ import annotations

import csv
import io

import h3
import pytest

from cityloop.supervision.sweep import sweep
from tests.evaluation.helpers import Story, at
from tests.evaluation.test_indicators import september

NOW = at(12, 12, month=10)


@pytest.fixture
def story(city_session, city_places, tmp_path):
    return Story(city_session, city_places, tmp_path / "media")


@pytest.fixture
def month(story: Story, city_session, clock):
    ids = september(story)
    city_session.commit()
    clock.set(NOW)
    return ids


def _get(client, auth, path, user="leader", **params):
    response = client.get(f"/api/v1/analytics/{path}", params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


def test_heat_map_counts_cases_per_cell_and_ranks_hot_spots(client, auth, month):
    fine = _get(client, auth, "heatmap", period="2026-09", resolution=10)
    assert fine["total"] == 11  # A–K were all reported in September
    counts = [c["count"] for c in fine["cells"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 11
    coarse = _get(client, auth, "heatmap", period="2026-09", resolution=6, boundaries="true")
    assert [c["count"] for c in coarse["cells"]] == [11]  # one district-sized cell
    spot = coarse["hot_spots"][0]
    assert (spot["rank"], spot["street_name"], spot["community_name"]) == (
        1,
        "嘉莲街道",
        "盈翠社区",
    )
    assert h3.get_resolution(spot["cell"]) == 6 and len(spot["boundary"]) == 6
    assert h3.cell_to_parent(fine["cells"][0]["cell"], 6) == spot["cell"]


def test_heat_map_filters(client, auth, month):
    assert _get(client, auth, "heatmap", period="2026-09", class_code="09006")["total"] == 3
    assert _get(client, auth, "heatmap", period="2026-09", class_code="09")["total"] == 3
    assert _get(client, auth, "heatmap", period="2026-09", source="public")["total"] == 2
    # Open now: C and D were closed in October; J (filed) and K (filed) are open.
    assert _get(client, auth, "heatmap", period="2026-09", state="open")["total"] == 2
    assert _get(client, auth, "heatmap", period="2026-09", state="merged")["total"] == 1
    assert _get(client, auth, "heatmap", period="2026-09", region="350206")["total"] == 0
    assert _get(client, auth, "heatmap", period="2026-08")["total"] == 0
    # A department sees the cases it holds: 思明 holds the dispatched ones.
    held = _get(client, auth, "heatmap", user="handler", period="2026-09")["total"]
    assert held == 7  # A B C D E F G
    assert _get(client, auth, "heatmap", user="handler_huli", period="2026-09")["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "2026-09", "resolution": 11}, "resolution"),
        ({"period": "2026-09", "source": "carrier_pigeon"}, "source"),
        ({"period": "2026-09", "state": "lost"}, "state"),
        ({"period": "2026-09", "region": "厦门"}, "region"),
        ({"period": "September"}, "period"),
    ],
)
def test_bad_filters_name_the_field(client, auth, month, params, field):
    response = client.get("/api/v1/analytics/heatmap", params=params, headers=auth("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_inspectors_do_not_read_analytics(client, auth, month):
    response = client.get(
        "/api/v1/analytics/trends", params={"period": "2026-09"}, headers=auth("inspector")
    )
    assert response.status_code == 403


def test_high_incidence(client, auth, month):
    body = _get(client, auth, "incidence", period="2026-09")
    matrix = body["by_hour_weekday"]["counts"]
    assert matrix[2][9] == 3  # Wednesdays at nine (local time): A (2 Sep), F (16), D (30)
    assert matrix[2][17] == 1  # K: Wednesday 30 Sep, 17:00
    assert sum(body["by_hour"]) == 11 and body["by_hour"][9] == 8
    assert body["peak"]["hour"] == 9
    classes = {c["class_code"]: c for c in body["classes"]}
    assert classes["06010"]["count"] == 7 and classes["06010"]["rank"] == 1
    assert classes["06010"]["name"] == "暴露垃圾"
    sources = {s["source"]: s for s in body["sources"]}
    assert sources["inspector"]["count"] == 7 and sources["inspector"]["label"] == "监督员上报"
    assert sources["wechat"]["share"] == pytest.approx(1 / 11)
    assert body["streets"][0]["name"] == "嘉莲街道"


def test_stages_where_time_goes_and_cases_wait(client, auth, month, story, city_session):
    # J and K sit in the dispatch stage, long overdue: the sweep marks them.
    sweep(city_session, now=at(12, 11, 59, month=10), calendar=story.calendar)
    city_session.commit()
    body = _get(client, auth, "stages", period="2026-09")
    stages = {s["stage"]: s for s in body["stages"]}
    verify = stages["verify"]
    assert (verify["visits"], verify["late"]) == (2, 1)  # B on time; I withdrawn late
    assert stages["verify"]["limit_working_minutes"] == 60
    assert stages["check"]["visits"] == 6 and stages["check"]["late"] == 1
    assert stages["handle"]["visits"] == 7  # results in September, E's return included
    assert stages["handle"]["late"] == 1  # B
    october = _get(client, auth, "stages", period="2026-10")
    dispatch = {s["stage"]: s for s in october["stages"]}["dispatch"]
    assert (dispatch["waiting_now"], dispatch["waiting_overdue_now"]) == (2, 2)
    assert dispatch["overdue_marks"] == 2  # the sweep's clock_overdue notes of 12 Oct
    assert october["most_waiting"] == "dispatch"


def test_trends_per_day_week_and_month(client, auth, month):
    days = _get(client, auth, "trends", period="2026-09", bucket="day")
    by_day = {p["bucket"]: p for p in days["points"]}
    assert len(by_day) == 30
    assert by_day["2026-09-02"]["reported"] == 1 and by_day["2026-09-03"]["closed"] == 1
    assert sum(p["reported"] for p in days["points"]) == 11
    assert sum(p["filed"] for p in days["points"]) == 8  # J born filed; K filed in October
    assert sum(p["closed_on_time"] for p in days["points"]) == 4
    quarter = _get(client, auth, "trends", period="2026-Q3", bucket="month")
    assert [p["bucket"] for p in quarter["points"]] == ["2026-07", "2026-08", "2026-09"]
    assert quarter["points"][-1]["closed"] == 5
    weeks = _get(client, auth, "trends", period="2026-09", bucket="week")
    assert weeks["points"][0]["bucket"] == "2026-09-01..2026-09-06"


def test_csv_export(client, auth, month):
    response = client.get(
        "/api/v1/analytics/cases.csv", params={"period": "2026-09"}, headers=auth("operator")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["案卷编号", "上报时间", "来源", "类别代码", "类别"]
    assert len(rows) == 12
    assert {r[12] for r in rows[1:]} >= {"已结案", "已合并", "不予受理", "已立案"}
    closed = _rows(client, auth, period="2026-09", state="closed")
    assert len(closed) == 7  # A–G; A is archived after its return visit
    assert len(_rows(client, auth, period="2026-09", state="archived")) == 1
    only_public = _rows(client, auth, period="2026-09", source="public")
    assert len(only_public) == 2 and all(r[2] == "公众举报" for r in only_public)
    mine = _rows(client, auth, user="handler_huli", period="2026-09")
    assert mine == []
    bad = client.get(
        "/api/v1/analytics/cases.csv",
        params={"period": "2026-09", "urgency": "Z"},
        headers=auth("operator"),
    )
    assert bad.status_code == 422 and bad.json()["field"] == "urgency"


def _rows(client, auth, user="operator", **params):
    response = client.get("/api/v1/analytics/cases.csv", params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8").lstrip("\ufeff"))))[1:]


def test_a_responsibility_grid_filters_the_export_as_it_filters_the_map(
    client, auth, month, city_session
):
    """A responsibility grid code (350203011003R01) is a region like any other: the CSV export
    of its cases holds the cases the heat map counts there, not nothing."""
    from cityloop.cases.models import Case

    grid = city_session.get(Case, month["A"]).resp_grid
    assert grid and "R" in grid
    on_map = _get(client, auth, "heatmap", period="2026-09", region=grid)["total"]
    exported = _rows(client, auth, period="2026-09", region=grid)
    assert on_map >= 1 and len(exported) == on_map
    assert city_session.get(Case, month["A"]).ticket in {r[0] for r in exported}


def test_csv_export_by_class_and_department(client, auth, month, story):
    """The export takes the map's class and department filters: 09006 (占道经营) is B, I
    and K; 思明区城管办 holds A–G."""
    by_class = _rows(client, auth, period="2026-09", class_code="09006")
    assert len(by_class) == 3 and {r[3] for r in by_class} == {"09006"}
    assert len(_rows(client, auth, period="2026-09", class_code="09")) == 3
    siming = story.department("D-350203")
    held = _rows(client, auth, period="2026-09", department_id=siming)
    assert len(held) == 7 and {r[13] for r in held} == {"思明区城市管理办公室"}
    assert _rows(client, auth, period="2026-09", department_id=story.department("D-350206")) == []
