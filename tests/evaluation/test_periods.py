"""Evaluation periods: any day, week, month, quarter, year or custom range, with 环比 and
同比 (R-EV-1). Pure: no database."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from cityloop.errors import ValidationFailed
from cityloop.evaluation.periods import parse_period

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "kind", "first", "last", "label"),
    [
        ("2026-09-02", "day", date(2026, 9, 2), date(2026, 9, 2), "2026年9月2日"),
        ("2026-W36", "week", date(2026, 8, 31), date(2026, 9, 6), "2026年第36周"),
        ("2026-09", "month", date(2026, 9, 1), date(2026, 9, 30), "2026年9月"),
        ("2026-Q3", "quarter", date(2026, 7, 1), date(2026, 9, 30), "2026年第3季度"),
        ("2026", "year", date(2026, 1, 1), date(2026, 12, 31), "2026年"),
        (
            "2026-09-01..2026-09-15",
            "custom",
            date(2026, 9, 1),
            date(2026, 9, 15),
            "2026年9月1日至2026年9月15日",
        ),
    ],
)
def test_every_kind_of_period(text, kind, first, last, label):
    p = parse_period(text)
    assert (p.kind, p.first, p.last, p.label, p.key) == (kind, first, last, label, text)
    assert p.start(TZ) == datetime(first.year, first.month, first.day, tzinfo=TZ)


def test_previous_and_last_year():
    assert parse_period("2026-01").previous().key == "2025-12"
    assert parse_period("2026-03").last_year().key == "2025-03"
    assert parse_period("2026-Q1").previous().key == "2025-Q4"
    assert parse_period("2026-W01").previous().key == "2025-W52"
    assert parse_period("2026-W53").last_year().key == "2025-W52"  # 2025 has 52 weeks
    assert parse_period("2028-02-29").last_year().key == "2027-02-28"
    custom = parse_period("2026-09-01..2026-09-10")
    assert custom.previous().key == "2026-08-22..2026-08-31"
    assert custom.last_year().key == "2025-09-01..2025-09-10"
    assert parse_period("2026-09").end(TZ) == datetime(2026, 10, 1, tzinfo=TZ)


def test_buckets_for_trends():
    month = parse_period("2026-09")
    assert len(month.buckets("day")) == 30
    weeks = month.buckets("week")
    assert [w.key for w in weeks][:2] == ["2026-09-01..2026-09-06", "2026-W37"]
    assert weeks[-1].last == date(2026, 9, 30)
    assert [b.key for b in parse_period("2026-Q3").buckets("month")] == [
        "2026-07",
        "2026-08",
        "2026-09",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-13",
        "2026-W54",
        "2026-Q5",
        "26-09",
        "2026-09-31",
        "2026-09-10..2026-09-01",
        "2020-01-01..2026-01-01",
        "last month",
    ],
)
def test_bad_periods_name_the_field(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_period(text)
    assert caught.value.field == "period"
