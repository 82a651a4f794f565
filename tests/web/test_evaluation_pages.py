"""The evaluation pages (R-EV-1, R-EV-2, R-EV-3, R-EV-4): a leader opens 综合评价 from the big
screen and reads, for the last whole month by default, the departments' ranking with their
indicators, scores and grades and the published rates with 环比/同比; switches to the
operators and a custom range; downloads the workbook of the same period, a real xlsx with
Chinese headers. In chromium over the fixture city, with cases driven through the loop by
the people whose posts are evaluated. Without a browser, on SQLite and PostgreSQL: who may
read what, bad periods answered under their field with the typing kept, and the workbook is
the one the API gives."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.conftest import TZ
from tests.evaluation.helpers import Story
from tests.web.conftest import SCREENSHOTS, YINGCUI, LiveServer, form_login, login

SIMING = "思明区城市管理办公室"


def _at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


@pytest.fixture(scope="module")
def evaluated(live_server: LiveServer) -> Iterator[None]:
    """Two hotline cases in July and two in August (24th and 25th), each filed and closed by
    the operator, dispatched by the dispatcher to the Siming district office, handled there,
    approved and checked on site — all well within their limits."""
    with live_server.session() as session:
        story = Story(session, live_server.places, live_server.data_dir / "media")
        for month, day in ((7, 8), (7, 15), (8, 24), (8, 25)):
            case_id = story.report(
                _at(month, day, 9), source="hotline_12345", community=YINGCUI, class_code="08004"
            )
            story.handle(
                case_id,
                _at(month, day, 9, 30),
                submit=_at(month, day, 14, 30),
                close=_at(month, day, 16),
            )
        session.commit()
    yield


def _cell(row: Any, column: str) -> str:
    return str(row.locator(f'td[data-col="{column}"]').inner_text()).strip()


def test_the_leader_reads_rankings_and_rates_and_downloads_the_workbook(
    live_server: LiveServer, new_context: Any, evaluated: None
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = login(new_context(viewport={"width": 1920, "height": 1080}), "leader")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    with page.expect_navigation():
        page.click("#to-evaluation")

    # The last whole month (July 2026, the clock being at 27 August) and the departments.
    expect(page.locator("#period-label")).to_have_text("2026年7月")
    expect(page.locator("#kind option:checked")).to_have_text("专业部门")
    row = page.locator("#ranking tbody tr", has_text=SIMING)
    expect(row).to_have_count(1)
    assert _cell(row, "closed") == "2" and _cell(row, "due") == "2"
    assert _cell(row, "closure_rate") == "100.00%"
    assert _cell(row, "rank") == "1"
    assert re.fullmatch(r"\d+\.\d\d", _cell(row, "score"))
    assert _cell(row, "grade") in {"A", "B", "C", "D", "E"}
    assert _cell(row, "score_previous") == "—"  # nothing was closed in June
    # The published rates with 环比 (June) and 同比 (July 2025).
    closed = page.locator('#rates tr[data-rate="closed"]')
    assert (_cell(closed, "value"), _cell(closed, "previous"), _cell(closed, "last_year")) == (
        "2",
        "0",
        "0",
    )
    closure = page.locator('#rates tr[data-rate="closure_rate"]')
    assert _cell(closure, "value") == "100.00%"
    expect(page.locator("#rates thead")).to_contain_text("2026年6月")
    expect(page.locator("#rates thead")).to_contain_text("2025年7月")
    page.screenshot(path=str(SCREENSHOTS / "evaluation.png"), full_page=True)

    # The workbook of the same period: a real xlsx, Chinese headers, the same department.
    with page.expect_download() as info:
        page.click("#download-xlsx")
    download = info.value
    assert download.suggested_filename == "evaluation-2026-07.xlsx"
    book = load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True)
    assert {"综合指标", "专业部门", "受理员", "派遣员", "街道", "说明"} <= set(book.sheetnames)
    summary = list(book["综合指标"].iter_rows(values_only=True))
    assert "2026年7月" in str(summary[0][0])
    assert summary[1][:2] == ("指标", "2026年7月")
    departments = list(book["专业部门"].iter_rows(values_only=True))
    headers = departments[1]
    assert {"排名", "专业部门", "结案数", "结案率", "综合指标值", "等级"} <= set(headers)
    siming = next(r for r in departments[2:] if r[headers.index("专业部门")] == SIMING)
    assert siming[headers.index("结案数")] == 2
    assert siming[headers.index("等级")] == _cell(row, "grade")

    # Switch: the operators over a custom range holding the two August cases only.
    page.select_option("#kind", "operators")
    page.select_option("#unit", "custom")
    expect(page.locator("#from")).to_be_visible()
    expect(page.locator("#month")).to_be_hidden()
    page.fill("#from", "2026-08-24")
    page.fill("#to", "2026-08-26")
    with page.expect_navigation():
        page.click("#show-evaluation")
    expect(page.locator("#period-label")).to_have_text("2026年8月24日至2026年8月26日")
    operator = page.locator("#ranking tbody tr", has_text="受理员")
    expect(operator).to_have_count(1)
    assert (_cell(operator, "accepted"), _cell(operator, "closes")) == ("2", "2")
    expect(page.locator("#download-xlsx")).to_have_attribute(
        "href", "/evaluation/report.xlsx?period=2026-08-24..2026-08-26"
    )

    # A range that ends before it starts: the message under the field, the typing kept.
    page.fill("#to", "2026-08-01")
    with page.expect_navigation() as nav:
        page.click("#show-evaluation")
    assert nav.value is not None and nav.value.status == 422
    expect(page.locator('.field-error[data-field="to"]')).to_have_text("截止日不能早于起始日")
    expect(page.locator("#to")).to_have_value("2026-08-01")
    expect(page.locator("#kind")).to_have_value("operators")
    expect(page.locator("#ranking")).to_have_count(0)
    assert not page.js_errors


# -- without a browser, on both databases ----------------------------------------------------
def test_who_reads_the_evaluation_pages(client: TestClient) -> None:
    """Readers are the evaluation API's (R-EV-1): a handler sees its departments only and has
    no workbook; an inspector none of it."""
    form_login(client, "handler")
    page = client.get("/evaluation")
    assert page.status_code == 200
    assert re.findall(r'<option value="(\w+)"', page.text.split('id="level"')[0]) == ["departments"]
    assert 'id="download-xlsx"' not in page.text and 'href="/evaluation"' in page.text
    assert client.get("/evaluation?kind=operators").status_code == 422
    assert client.get("/evaluation/report.xlsx?period=2026-08").status_code == 403
    client.cookies.clear()
    form_login(client, "inspector")
    assert client.get("/evaluation").status_code == 403
    client.cookies.clear()
    form_login(client, "dispatcher")
    desk = client.get("/desk/dispatch").text
    assert 'href="/evaluation"' in desk  # the navigation links it for the roles that read it
    english = client.get("/evaluation?lang=en&kind=regions&level=community")
    assert english.status_code == 200
    assert ">Ranking<" in english.text and ">Communities<" in english.text


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("unit=month&month=2026-13", "month", "请输入有效月份，如 2026-09"),
        ("unit=week&week=2026-W54", "week", "请输入有效的周，如 2026-W36"),
        ("unit=quarter&quarter=2026-Q5", "quarter", "请输入有效季度，如 2026-Q3"),
        ("unit=day&day=2026-02-30", "day", "请输入有效日期，如 2026-09-02"),
        ("unit=custom&from=2020-01-01&to=2026-01-01", "to", "自定义范围最长3年"),
        ("unit=decade", "unit", "请从列表中选择"),
        ("kind=mayors", "kind", "请从列表中选择"),
        ("kind=regions&level=planet", "level", "请从列表中选择"),
        ("period=2026-M9", "unit", "统计期无效，应如 2026-09-02、2026-W36、2026-09、2026-Q3、2026"),
    ],
)
def test_a_bad_period_is_answered_under_its_field(
    client: TestClient, query: str, field: str, message: str
) -> None:
    """Bad input to the evaluation page (R-EV-1): 422, the message under the field."""
    form_login(client, "shiftlead")
    response = client.get("/evaluation?" + query)
    assert response.status_code == 422
    found = re.search(rf'class="field-error" data-field="{field}">([^<]+)<', response.text)
    assert found and found.group(1) == message
    if query.startswith("unit=") and field != "unit":
        typed = query.split("&")[-1].split("=")[1]
        assert f'value="{typed}"' in response.text  # what was typed is still there
    assert 'id="ranking"' not in response.text


def test_the_page_and_the_api_give_the_same_workbook(client: TestClient, auth: Any) -> None:
    """The console's download is the API's workbook (R-EV-3), for any period."""
    form_login(client, "leader")
    page = client.get("/evaluation?unit=quarter&quarter=2026-Q3")
    assert page.status_code == 200
    assert 'href="/evaluation/report.xlsx?period=2026-Q3"' in page.text
    from_page = client.get("/evaluation/report.xlsx?period=2026-Q3")
    assert from_page.status_code == 200
    assert from_page.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "evaluation-2026-Q3.xlsx" in from_page.headers["content-disposition"]
    from_api = client.get(
        "/api/v1/evaluation/report.xlsx", params={"period": "2026-Q3"}, headers=auth("leader")
    )

    def cells(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
        book = load_workbook(io.BytesIO(body), read_only=True)
        return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}

    assert cells(from_page.content) == cells(from_api.content)
    assert client.get("/evaluation/report.xlsx?period=2026-99").status_code == 422
    # A link with ?period= (as the API takes it) opens the page on that period.
    week = client.get("/evaluation?period=2026-W35")
    assert 'id="period-label">2026年第35周<' in week.text
