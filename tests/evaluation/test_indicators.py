"""Hand-checked indicators (R-EV-1..4) over one month of cases told through intake.receive()
and cases.service.transition(): every figure below was counted by hand from the stories.

September 2026 in 思明区 (嘉莲街道, 盈翠社区), department 思明区城管办 unless said otherwise:
  A  inspector report, dispatched 2 Sep, closed 3 Sep — on time
  B  public report, verified, dispatched 7 Sep (due 9 Sep), handled and closed 10 Sep — late
  C  dispatched 28 Sep (due 30 Sep), nothing by the month's end — overdue, open; handled and
     closed 8 Oct, after the National Day holiday — late, counted in October
  D  dispatched 30 Sep with urgency C: 4 working days over the holiday end 12 Oct 10:00;
     closed 9 Oct — not due in September, on time in October
  E  dispatched to 湖里区 by mistake, returned within the hour, re-dispatched — on time
  F  result checked and failed, reworked: the new deadline falls on Sunday 20 Sep, a 调休
     working day — on time
  G  filed late by the shift leader, postponement of 2 working days granted: the deadline
     jumps the Mid-Autumn holiday to 28 Sep — closed on time
  H  inspector report merged into A as a duplicate
  I  public report rejected while the inspector had not verified it (1 h 50 late)
  J  leader's assignment, born filed, not dispatched yet
  K  public report of 30 Sep 17:00, verified on 8 Oct 08:50 — 40 working minutes: on time
"""

from __future__ import annotations

import pytest

from cityloop.cases.models import Case
from tests.evaluation.helpers import JIANGTOU, YINGCUI, Story, at

NOW = at(12, 12, month=10)


def september(story: Story) -> dict[str, int]:
    s = story
    ids: dict[str, int] = {}
    ids["A"] = a = s.report(at(2, 9))
    ids["H"] = h = s.report(at(3, 9))  # told first: A must still be open to merge into
    s.act(h, "merge", "operator", at(3, 9, 10), into_case_id=a)
    s.handle(a, at(2, 9, 10), submit=at(3, 10), close=at(3, 11))
    s.act(a, "return_visit", "operator", at(4, 10), satisfied=True)

    ids["B"] = b = s.report(at(7, 8, 30), source="public", class_code="09006")
    s.act(b, "send_to_verify", "operator", at(7, 8, 40))
    s.act(b, "verify", "inspector", at(7, 9), confirmed=True)
    s.handle(b, at(7, 9, 10), submit=at(10, 9), close=at(10, 10), method="management")

    ids["C"] = c = s.report(at(28, 9))
    s.handle(c, at(28, 9, 10), submit=at(8, 9, month=10), close=at(8, 10, month=10))

    ids["D"] = d = s.report(at(30, 9, 50), class_code="07001")
    case = s.handle(d, at(30, 10), submit=at(9, 10, month=10), close=at(9, 11, month=10))
    assert case.due_at == at(12, 10, month=10)

    ids["E"] = e = s.report(at(14, 9))
    s.act(e, "file", "operator", at(14, 9, 5))
    s.act(e, "dispatch", "dispatcher", at(14, 9, 10), department_id=s.department("D-350206"))
    s.act(e, "return", "handler_huli", at(14, 9, 30), reason="不属本区")
    s.act(e, "dispatch", "dispatcher", at(14, 9, 40), department_id=s.department("D-350203"))
    s.act(e, "submit_result", "handler", at(15, 10), result="已处置", method="service")
    s.act(e, "approve_result", "dispatcher", at(15, 10, 5))
    s.act(e, "report_check", "inspector", at(15, 10, 55), passed=True)
    s.act(e, "close", "operator", at(15, 11))

    ids["F"] = f = s.report(at(16, 9))
    s.act(f, "file", "operator", at(16, 9, 5))
    s.act(f, "dispatch", "dispatcher", at(16, 9, 10), department_id=s.department("D-350203"))
    s.act(f, "submit_result", "handler", at(16, 15), result="已处置", method="service")
    s.act(f, "approve_result", "dispatcher", at(16, 15, 5))
    s.act(f, "report_check", "inspector", at(17, 9), passed=False)
    reworked = s.act(f, "rework", "operator", at(17, 9, 30), reason="未处置到位")
    assert reworked.due_at == at(20, 9, 30)  # Sunday 20 Sep 2026 is a working day (调休)
    s.act(f, "submit_result", "handler", at(18, 10), result="返工完成", method="enforcement")
    s.act(f, "approve_result", "dispatcher", at(18, 10, 5))
    s.act(f, "report_check", "inspector", at(18, 10, 55), passed=True)
    s.act(f, "close", "operator", at(18, 11))

    ids["G"] = g = s.report(at(21, 9))
    s.act(g, "file", "shiftlead", at(21, 9, 40))  # 40 minutes: the 30-minute limit missed
    s.act(g, "dispatch", "dispatcher", at(21, 9, 45), department_id=s.department("D-350203"))
    s.act(g, "request_postpone", "handler", at(22, 10), days=2, reason="需协调物业")
    postponed = s.act(g, "approve_postpone", "dispatcher", at(22, 10, 30))
    assert postponed.due_at == at(28, 9, 45)  # 23 Sep + 2 working days, over 25–27 Sep
    s.act(g, "submit_result", "handler", at(28, 8, 40), result="已处置", method="service")
    s.act(g, "approve_result", "dispatcher", at(28, 8, 45))
    s.act(g, "report_check", "inspector", at(28, 9, 25), passed=True)
    s.act(g, "close", "operator", at(28, 9, 30))

    ids["I"] = i = s.report(at(8, 8, 50), source="public", class_code="09006")
    s.act(i, "send_to_verify", "operator", at(8, 9))
    s.act(i, "reject", "operator", at(8, 11), reason="重复举报")

    ids["J"] = s.report(at(24, 9), source="leader")

    ids["K"] = k = s.report(at(30, 17), source="wechat", class_code="09006")
    s.act(k, "send_to_verify", "operator", at(30, 17, 10))
    s.act(k, "verify", "inspector", at(8, 8, 50, month=10), confirmed=True)
    s.act(k, "file", "operator", at(8, 9, month=10))
    return ids


def test_department_figures_for_the_month(story: Story, city_session):
    """R-EV-1, R-EV-2: 应结案 = closed in the month + due in it and still open at its end;
    按期结案 from the close event; rework, postponement, return counted from their events."""
    september(story)
    rows = story.table("departments", "2026-09", now=NOW)
    siming = rows["D-350203"]
    assert {k: siming[k] for k in ("due", "closed", "closed_on_time", "overdue_open")} == {
        "due": 6,  # A B E F G closed, C overdue; D is due in October
        "closed": 5,
        "closed_on_time": 4,  # B was late
        "overdue_open": 1,
    }
    assert siming["handled"] == 5 and siming["handled_on_time"] == 4
    assert siming["overdue_unhandled"] == 1
    assert (siming["reworks"], siming["postponements"], siming["returns"]) == (1, 1, 0)
    assert siming["closure_rate"] == pytest.approx(5 / 6)
    assert siming["on_time_closure_rate"] == pytest.approx(4 / 6)
    assert siming["rework_rate"] == pytest.approx(1 / 6)
    # 10 (case count) + 30 × 5/6 + 30 × 4/6 + 30 × (1 − 1/6) = 80, minus 1 overdue (1.0)
    # and 1 late closure (0.5)
    assert siming["case_count_score"] == 100
    assert siming["base_score"] == pytest.approx(80.0)
    assert siming["deduction"] == pytest.approx(1.5)
    assert siming["score"] == pytest.approx(78.5)
    assert siming["grade"] == "B" and siming["rank"] == 1
    huli = rows["D-350206"]  # it only returned E
    assert (huli["returns"], huli["due"], huli["score"], huli["rank"]) == (1, 0, None, None)

    october = story.table("departments", "2026-10", now=NOW)["D-350203"]
    assert (october["due"], october["closed"], october["closed_on_time"]) == (2, 2, 1)
    assert october["overdue_open"] == 0


def test_a_running_month_counts_deadlines_passed_so_far(story: Story):
    """A period that has not ended is counted up to now: C is overdue on 30 Sep 12:00; D,
    due in October, is not counted yet."""
    september(story)
    rows = story.table("departments", "2026-09", now=at(30, 12))
    siming = rows["D-350203"]
    assert siming["overdue_open"] == 1 and siming["closed"] == 5


def test_region_figures(story: Story):
    """Regions: filings (J born filed counts), public-report share, closure rates."""
    september(story)
    street = story.table("regions", "2026-09", now=NOW, level="street")["350203011"]
    assert street["name"] == "嘉莲街道"
    assert (street["filed"], street["public_filed"]) == (8, 1)  # K is filed in October
    assert (street["due"], street["closed"], street["closed_on_time"]) == (6, 5, 4)
    assert street["filing_score"] == 90  # 8 filings over its many unit grids: < 3 a grid
    # 10 % × (1 − 1/8) + 20 % × 90 + 30 % × 5/6 + 40 % × 4/6 − 1.5
    assert street["score"] == pytest.approx(8.75 + 18 + 25 + 26.6667 - 1.5, abs=0.01)
    community = story.table("regions", "2026-09", now=NOW, level="community")[YINGCUI]
    assert community["due"] == 6 and community["name"] == "盈翠社区"
    district = story.table("regions", "2026-09", now=NOW, level="district")["350203"]
    assert district["closed"] == 5
    grids = story.table("regions", "2026-09", now=NOW, level="unit_grid")
    assert sum(r["filed"] for r in grids.values()) == 8
    assert all(r["unit_grids"] == 1 for r in grids.values())
    # 责任网格: the community's figures split between its two responsibility grids.
    resp = story.table("regions", "2026-09", now=NOW, level="resp_grid")
    assert sorted(resp) == [YINGCUI + "R01", YINGCUI + "R02"]
    assert {r["name"] for r in resp.values()} == {"盈翠社区第一网格", "盈翠社区第二网格"}
    for key in ("filed", "public_filed", "due", "closed", "closed_on_time", "overdue_open"):
        assert sum(r[key] for r in resp.values()) == community[key], key
    first = min(resp.values(), key=lambda r: r["rank"])
    # Everything due there closed on time, no public report, < 3 filings a grid:
    # 10 % × 100 + 20 % × 90 + 30 % × 100 + 40 % × 100, nothing to deduct
    assert (first["closed"], first["closed_on_time"]) == (first["due"], first["due"])
    assert (first["public_filed"], first["filing_score"]) == (0, 90)
    assert (first["score"], first["grade"], first["rank"]) == (98.0, "A", 1)
    other = max(resp.values(), key=lambda r: r["rank"])
    assert other["deduction"] == pytest.approx(1.5)  # C overdue (1.0), B closed late (0.5)


def test_inspector_figures(story: Story):
    """监督员: own reports and valid ones, public reports missed in the grid, verification and
    check tasks done within their limits (working time: K's verification over the holiday is
    on time)."""
    september(story)
    rows = story.table("inspectors", "2026-09", now=NOW)
    mine = rows["inspector"]
    assert (mine["reports"], mine["valid_reports"]) == (7, 6)  # H was merged
    assert (mine["filed_in_grid"], mine["missed"]) == (8, 1)  # B
    assert (mine["verify_due"], mine["verify_on_time"]) == (3, 2)  # I's came too late
    assert (mine["check_due"], mine["check_on_time"]) == (6, 5)  # F's first check was late
    expected = 0.4 * 600 / 7 + 0.2 * 87.5 + 0.2 * 200 / 3 + 0.2 * 500 / 6
    assert mine["score"] == pytest.approx(expected, abs=0.01)
    assert mine["grade"] == "B"
    other = rows["inspector_huli"]  # 江头街道: nothing happened there
    assert other["reports"] == 0 and other["score"] is None


def test_centre_staff_figures(story: Story):
    """受理员, 值班长, 派遣员: counts and actions taken within their stage limits."""
    september(story)
    operator = story.table("operators", "2026-09", now=NOW)["operator"]
    assert operator["accepted"] == 9  # A B C D E F H I K; G was filed by the shift leader
    assert (operator["verify_sent"], operator["verify_sent_on_time"]) == (3, 3)
    assert (operator["closes"], operator["closes_on_time"]) == (5, 5)
    assert operator["accepted_score"] == 0  # 9 a month is below the table's first step
    assert operator["score"] == pytest.approx(0.4 * 100 + 0.35 * 100)

    lead = story.table("shiftleads", "2026-09", now=NOW)["shiftlead"]
    assert (lead["filed"], lead["filed_on_time"], lead["voided"]) == (1, 0, 0)
    assert lead["accurate_file_rate"] == 1.0 and lead["close_rate"] is None
    # no closing to score: 25 % × 0 + 40 % × 100, scaled to the 65 % that was measured
    assert lead["score"] == pytest.approx(40 / 0.65, abs=0.01)

    dispatcher = story.table("dispatchers", "2026-09", now=NOW)["dispatcher"]
    assert (dispatcher["dispatched"], dispatcher["dispatched_on_time"]) == (8, 8)
    assert dispatcher["returned"] == 1 and dispatcher["accurate_rate"] == pytest.approx(7 / 8)


def test_published_rates(story: Story):
    """R-EV-3, R-EV-4: filing, closure, disposal, effective feedback, satisfaction, 721."""
    september(story)
    r = story.rates("2026-09", now=NOW)
    assert (r["reports"], r["filed"], r["rejected"], r["merged"]) == (11, 9, 1, 1)
    assert r["filing_rate"] == pytest.approx(0.9)
    assert (r["due"], r["closed"], r["closed_on_time"]) == (6, 5, 4)
    assert r["closure_rate"] == pytest.approx(5 / 6)
    assert r["disposal_rate"] == pytest.approx(5 / 6)
    assert (r["feedback_reviewed"], r["feedback_effective"]) == (6, 6)
    assert (r["return_visits"], r["satisfied"], r["satisfaction_rate"]) == (1, 1, 1.0)
    assert (r["method_service"], r["method_management"], r["method_enforcement"]) == (3, 1, 1)
    assert r["share_service"] == pytest.approx(0.6)
    assert (r["reworks"], r["postponements"], r["returns"]) == (1, 1, 1)
    week = story.rates("2026-W38", now=NOW)  # 14–20 Sep: E and F closed
    assert (week["closed"], week["due"]) == (2, 2)


def test_a_reopened_case_counts_each_closure(story: Story):
    """An unsatisfied return visit reopens a case with a new deadline; closing it again is a
    second closure, and the sent-back result is not an effective one."""
    s = story
    case_id = s.report(at(2, 9))
    s.handle(case_id, at(2, 9, 10), submit=at(3, 10), close=at(3, 11))
    reopened = s.act(case_id, "return_visit", "operator", at(4, 9), satisfied=False)
    assert reopened.state == "dispatched"
    s.act(case_id, "submit_result", "handler", at(4, 15), result="再次处置", method="service")
    s.act(case_id, "send_back", "dispatcher", at(4, 15, 10), reason="照片不全")
    s.act(case_id, "submit_result", "handler", at(7, 9), result="补充照片", method="service")
    s.act(case_id, "approve_result", "dispatcher", at(7, 9, 5))
    s.act(case_id, "report_check", "inspector", at(7, 9, 50), passed=True)
    s.act(case_id, "close", "operator", at(7, 10))
    r = s.rates("2026-09", now=NOW)
    assert (r["closed"], r["closed_on_time"], r["due"]) == (2, 2, 2)
    assert (r["feedback_reviewed"], r["feedback_effective"]) == (3, 2)
    assert (r["return_visits"], r["satisfaction_rate"]) == (1, 0.0)


def test_a_suspended_case_stops_its_clock(story: Story):
    """挂账 (suspend) takes a case out of 应结案 while its deadline passes; resumed, it gets
    the working time it had left and is due again, in the month that deadline falls in."""
    s = story
    case_id = s.report(at(22, 9))
    s.act(case_id, "file", "operator", at(22, 9, 5))
    dispatched = s.act(
        case_id, "dispatch", "dispatcher", at(22, 9, 10), department_id=s.department("D-350203")
    )
    assert dispatched.due_at == at(24, 9, 10)  # urgency B: 2 working days
    s.act(case_id, "suspend", "dispatcher", at(23, 9, 10), reason="需上级协调")
    # 1 working day left; resumed on the first working day after the National Day holiday
    resumed = s.act(case_id, "resume", "dispatcher", at(8, 9, month=10))
    assert resumed.due_at == at(9, 9, month=10)

    september = s.rates("2026-09", now=NOW)
    assert (september["due"], september["overdue_open"]) == (0, 0)  # 24 Sep passed suspended
    assert "D-350203" not in s.table("departments", "2026-09", now=NOW)

    october = s.rates("2026-10", now=NOW)
    assert (october["due"], october["closed"], october["overdue_open"]) == (1, 0, 1)
    siming = s.table("departments", "2026-10", now=NOW)["D-350203"]
    assert (siming["overdue_open"], siming["overdue_unhandled"], siming["deduction"]) == (1, 1, 1.0)
    # 10 % × 100 (one case) + 30 % × 0 + 30 % × 0 + 30 % × (1 − 0) = 40, minus 1
    assert (siming["score"], siming["grade"]) == (39.0, "E")


def test_comparisons_previous_period_and_last_year(story: Story):
    """环比 / 同比: October against September and against October 2025."""
    september(story)
    ctx = story.context("2026-10", now=NOW)
    from cityloop.evaluation import service

    result = service.rates(ctx)
    assert result["periods"]["previous"]["key"] == "2026-09"
    assert result["periods"]["last_year"]["key"] == "2025-10"
    closed = next(i for i in result["items"] if i["key"] == "closed")
    assert (closed["value"], closed["previous"], closed["last_year"]) == (2, 5, 0)
    assert closed["change_previous"] == pytest.approx(-0.6)
    assert closed["change_last_year"] is None
    rate_item = next(i for i in result["items"] if i["key"] == "on_time_closure_rate")
    assert rate_item["change_previous"] == pytest.approx(0.5 - 4 / 6)
    rows = service.with_comparison(ctx, "departments", service.table(ctx, "departments"))
    siming = next(r for r in rows if r["key"] == "D-350203")
    assert siming["score_previous"] == pytest.approx(78.5)


def test_the_jiangtou_inspector_sees_his_own_grid(story: Story):
    """Grids are prefixes: a public report filed in 江头街道 is the 湖里 inspector's miss."""
    s = story
    case_id = s.report(at(2, 9), source="public", community=JIANGTOU + "001", class_code="06010")
    s.act(case_id, "file", "operator", at(2, 9, 10))
    rows = s.table("inspectors", "2026-09", now=NOW)
    assert (rows["inspector_huli"]["missed"], rows["inspector_huli"]["filed_in_grid"]) == (1, 1)
    assert rows["inspector"]["filed_in_grid"] == 0
    assert s.session.get(Case, case_id).street == JIANGTOU
