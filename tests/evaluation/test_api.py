"""The evaluation API as the console and the big screen use it (R-EV-1..4): who may read
what, the tables with Chinese headers, the rates with 环比/同比, the editable model, the
workbook download, and clear 4xx answers to bad input."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from tests.evaluation.helpers import Story, at
from tests.evaluation.test_indicators import september

NOW = at(12, 12, month=10)


@pytest.fixture
def month(story: Story, city_session, clock):
    september(story)
    city_session.commit()
    clock.set(NOW)
    return story


def test_the_department_table_with_headers_and_ranks(client, auth, month):
    response = client.get(
        "/api/v1/evaluation/departments", params={"period": "2026-09"}, headers=auth("leader")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["label"] == "2026年9月" and body["previous"]["key"] == "2026-08"
    assert body["last_year"]["key"] == "2025-09"
    labels = {c["key"]: c["label"] for c in body["columns"]}
    assert labels["on_time_closure_rate"] == "按期结案率" and labels["grade"] == "等级"
    first = body["rows"][0]
    assert (first["name"], first["rank"], first["grade"]) == ("思明区城市管理办公室", 1, "B")
    assert first["score"] == pytest.approx(78.5)


@pytest.mark.parametrize("kind", ["inspectors", "operators", "shiftleads", "dispatchers"])
def test_every_post_has_a_table(client, auth, month, kind):
    response = client.get(
        f"/api/v1/evaluation/{kind}",
        params={"period": "2026-09", "compare": "true"},
        headers=auth("dispatcher"),
    )
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert rows and all("score_previous" in r and "score_last_year" in r for r in rows)


def test_regions_by_level(client, auth, month):
    response = client.get(
        "/api/v1/evaluation/regions",
        params={"period": "2026-Q3", "level": "community"},
        headers=auth("operator"),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["kind_label"] == "区域（社区）"
    assert body["rows"][0]["name"] == "盈翠社区"


def test_rates_with_comparisons(client, auth, month):
    response = client.get(
        "/api/v1/evaluation/rates", params={"period": "2026-10"}, headers=auth("shiftlead")
    )
    assert response.status_code == 200
    items = {i["key"]: i for i in response.json()["items"]}
    assert items["closure_rate"]["label"] == "结案率"
    assert (items["closed"]["value"], items["closed"]["previous"]) == (2, 5)
    assert items["share_service"]["label"] == "服务占比 (7)"


def test_a_handler_sees_only_its_own_department(client, auth, month):
    """R-EV-1 scope: 湖里区城管办 reads its own row only; people and regions are not its to
    read; its rates leave out intake figures."""
    response = client.get(
        "/api/v1/evaluation/departments", params={"period": "2026-09"}, headers=auth("handler_huli")
    )
    assert response.status_code == 200
    assert [r["code"] for r in response.json()["rows"]] == ["D-350206"]
    for kind in ("inspectors", "regions", "operators"):
        refused = client.get(
            f"/api/v1/evaluation/{kind}", params={"period": "2026-09"}, headers=auth("handler")
        )
        assert refused.status_code == 403
    rates = client.get(
        "/api/v1/evaluation/rates", params={"period": "2026-09"}, headers=auth("handler")
    ).json()
    keys = {i["key"]: i["value"] for i in rates["items"]}
    assert "filing_rate" not in keys and keys["closed"] == 5
    report = client.get(
        "/api/v1/evaluation/report.xlsx", params={"period": "2026-09"}, headers=auth("handler")
    )
    assert report.status_code == 403


def test_inspectors_and_strangers_may_not_read(client, auth, month):
    assert client.get("/api/v1/evaluation/rates", params={"period": "2026-09"}).status_code == 401
    refused = client.get(
        "/api/v1/evaluation/departments", params={"period": "2026-09"}, headers=auth("inspector")
    )
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/evaluation/departments", {"period": "2026-13"}, "period"),
        ("/api/v1/evaluation/departments", {}, "period"),
        ("/api/v1/evaluation/teachers", {"period": "2026-09"}, "kind"),
        ("/api/v1/evaluation/regions", {"period": "2026-09", "level": "planet"}, "level"),
        ("/api/v1/evaluation/rates", {"period": "2026-09-10..2026-09-01"}, "period"),
    ],
)
def test_bad_input_names_the_field(client, auth, month, path, params, field):
    response = client.get(path, params=params, headers=auth("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_the_workbook_download(client, auth, month):
    response = client.get(
        "/api/v1/evaluation/report.xlsx", params={"period": "2026-09"}, headers=auth("leader")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "evaluation-2026-09.xlsx" in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == [
        "综合指标",
        "监督员",
        "受理员",
        "值班长",
        "派遣员",
        "专业部门",
        "区县",
        "街道",
        "社区",
        "责任网格",
        "单元网格",
        "说明",
    ]
    sheet = book["专业部门"]
    assert sheet["A1"].value == "2026年9月 综合评价 — 专业部门"
    header = [c.value for c in sheet[2]]
    assert header[:4] == ["排名", "专业部门", "应结案数", "处置数"]
    first = [c.value for c in sheet[3]]
    assert first[0] == 1 and first[1] == "思明区城市管理办公室" and first[-1] == "B"
    streets = book["街道"]
    assert streets["C3"].value == "嘉莲街道"


def test_the_model_is_editable_data(client, auth, month):
    """R-EV-2: weights, bands and deductions are data; only an administrator edits them."""
    got = client.get("/api/v1/evaluation/settings", headers=auth("operator"))
    assert got.status_code == 200
    assert got.json()["model"]["bands"][0] == ["A", 90]
    refused = client.put(
        "/api/v1/evaluation/settings", json={"bands": [["A", 50], ["E", 0]]}, headers=auth("leader")
    )
    assert refused.status_code == 403
    bad = client.put(
        "/api/v1/evaluation/settings",
        json={"weights": {"department": {"case_count": 0.5}}},
        headers=auth("admin"),
    )
    assert bad.status_code == 422 and bad.json()["field"] == "weights.department"
    unknown = client.put("/api/v1/evaluation/settings", json={"colour": 1}, headers=auth("admin"))
    assert unknown.status_code == 422 and unknown.json()["field"] == "colour"
    changed = client.put(
        "/api/v1/evaluation/settings",
        json={
            "bands": [["优秀", 75], ["合格", 50], ["不合格", 0]],
            "deductions": {
                "department": {"overdue_open": 10, "closed_late": 0, "max": 10},
                "region": {"overdue_open": 0, "closed_late": 0, "max": 0},
            },
        },
        headers=auth("admin"),
    )
    assert changed.status_code == 200, changed.text
    row = client.get(
        "/api/v1/evaluation/departments", params={"period": "2026-09"}, headers=auth("leader")
    ).json()["rows"][0]
    assert (row["deduction"], row["score"], row["grade"]) == (10.0, 70.0, "合格")
    restored = client.put(
        "/api/v1/evaluation/settings",
        json={"bands": None, "deductions": None},
        headers=auth("admin"),
    )
    assert restored.json()["model"]["bands"][0] == ["A", 90]
