"""Evaluation periods: a day, an ISO week, a month, a quarter, a year or a custom range of
days, in the city's time zone, with the period before it (环比) and the same period a year
earlier (同比).

Written as text in the API, the CLI and the workbook:
``2026-09-02`` (day), ``2026-W36`` (ISO week), ``2026-09`` (month), ``2026-Q3`` (quarter),
``2026`` (year), ``2026-09-01..2026-09-15`` (custom; both days included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cityloop.errors import ValidationFailed

KINDS = ("day", "week", "month", "quarter", "year", "custom")
KIND_LABELS = {
    "day": "日",
    "week": "周",
    "month": "月",
    "quarter": "季度",
    "year": "年",
    "custom": "自定义",
}
MAX_CUSTOM_DAYS = 3 * 366

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Period:
    """Days ``first`` .. ``last`` (both included) of the given kind."""

    kind: str
    first: date
    last: date

    @property
    def key(self) -> str:
        if self.kind == "day":
            return self.first.isoformat()
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.first.year}-{self.first.month:02d}"
        if self.kind == "quarter":
            return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
        if self.kind == "year":
            return str(self.first.year)
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def label(self) -> str:
        """The Chinese name of the period, as a bulletin writes it."""
        f = self.first
        if self.kind == "day":
            return f"{f.year}年{f.month}月{f.day}日"
        if self.kind == "week":
            year, week, _ = f.isocalendar()
            return f"{year}年第{week}周"
        if self.kind == "month":
            return f"{f.year}年{f.month}月"
        if self.kind == "quarter":
            return f"{f.year}年第{(f.month - 1) // 3 + 1}季度"
        if self.kind == "year":
            return f"{f.year}年"
        last = self.last
        return f"{f.year}年{f.month}月{f.day}日至{last.year}年{last.month}月{last.day}日"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def start(self, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.first, time(0, 0), tz)

    def end(self, tz: ZoneInfo) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(0, 0), tz)

    def previous(self) -> Period:
        """环比: the period of the same kind just before this one."""
        if self.kind == "day":
            return day_period(self.first - timedelta(days=1))
        if self.kind == "week":
            return week_period(self.first - timedelta(days=7))
        if self.kind == "month":
            return month_period(_add_months(self.first, -1))
        if self.kind == "quarter":
            return quarter_period(_add_months(self.first, -3))
        if self.kind == "year":
            return year_period(self.first.year - 1)
        length = timedelta(days=self.days)
        return Period("custom", self.first - length, self.last - length)

    def last_year(self) -> Period:
        """同比: the same period one year earlier (the same ISO week number for weeks)."""
        if self.kind == "day":
            return day_period(_minus_year(self.first))
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return week_period(_iso_week_start(year - 1, min(week, _weeks_in(year - 1))))
        if self.kind == "month":
            return month_period(date(self.first.year - 1, self.first.month, 1))
        if self.kind == "quarter":
            return quarter_period(date(self.first.year - 1, self.first.month, 1))
        if self.kind == "year":
            return year_period(self.first.year - 1)
        return Period("custom", _minus_year(self.first), _minus_year(self.last))

    def buckets(self, size: str) -> list[Period]:
        """The days, weeks or months that make up this period (clipped to it), for trends."""
        out: list[Period] = []
        cursor = self.first
        while cursor <= self.last:
            if size == "day":
                bucket = day_period(cursor)
            elif size == "week":
                bucket = week_period(cursor)
            elif size == "month":
                bucket = month_period(cursor)
            else:
                raise ValidationFailed("bucket must be day, week or month", field="bucket")
            first, last = max(bucket.first, self.first), min(bucket.last, self.last)
            if (first, last) != (bucket.first, bucket.last):
                bucket = Period("custom", first, last)
            out.append(bucket)
            cursor = last + timedelta(days=1)
        return out

    def as_dict(self) -> dict[str, str]:
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "first_day": self.first.isoformat(),
            "last_day": self.last.isoformat(),
        }


def day_period(day: date) -> Period:
    return Period("day", day, day)


def week_period(day: date) -> Period:
    first = day - timedelta(days=day.weekday())
    return Period("week", first, first + timedelta(days=6))


def month_period(day: date) -> Period:
    first = day.replace(day=1)
    return Period("month", first, _add_months(first, 1) - timedelta(days=1))


def quarter_period(day: date) -> Period:
    first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return Period("quarter", first, _add_months(first, 3) - timedelta(days=1))


def year_period(year: int) -> Period:
    return Period("year", date(year, 1, 1), date(year, 12, 31))


def parse_period(text: str | None, *, field: str = "period") -> Period:
    """A period from its text form; a 422 naming the field when it is not one."""
    raw = (text or "").strip()
    if not raw:
        raise ValidationFailed(
            "period is required: 2026-09-02, 2026-W36, 2026-09, 2026-Q3, 2026 or "
            "2026-09-01..2026-09-15",
            field=field,
        )
    try:
        if ".." in raw:
            left, right = (part.strip() for part in raw.split("..", 1))
            first, last = _date(left), _date(right)
            if last < first:
                raise ValueError("the range ends before it starts")
            if (last - first).days + 1 > MAX_CUSTOM_DAYS:
                raise ValueError(f"a custom range may cover at most {MAX_CUSTOM_DAYS} days")
            return Period("custom", first, last)
        if _DAY.match(raw):
            return day_period(_date(raw))
        if m := _WEEK.match(raw):
            year, week = int(m.group(1)), int(m.group(2))
            if not 1 <= week <= _weeks_in(year):
                raise ValueError(f"{year} has {_weeks_in(year)} ISO weeks")
            return week_period(_iso_week_start(year, week))
        if m := _QUARTER.match(raw):
            return quarter_period(date(int(m.group(1)), (int(m.group(2)) - 1) * 3 + 1, 1))
        if m := _MONTH.match(raw):
            return month_period(date(int(m.group(1)), int(m.group(2)), 1))
        if m := _YEAR.match(raw):
            return year_period(int(m.group(1)))
    except ValueError as exc:
        raise ValidationFailed(f"period {raw!r} is not valid: {exc}", field=field) from exc
    raise ValidationFailed(
        f"period {raw!r} is not one of 2026-09-02, 2026-W36, 2026-09, 2026-Q3, 2026, "
        "2026-09-01..2026-09-15",
        field=field,
    )


def _date(text: str) -> date:
    if not _DAY.match(text):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    return date.fromisoformat(text)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _minus_year(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _iso_week_start(year: int, week: int) -> date:
    return date.fromisocalendar(year, week, 1)


def _weeks_in(year: int) -> int:
    return date(year, 12, 28).isocalendar()[1]
