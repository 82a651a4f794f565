"""Legal periods as data, and the one way a period becomes a due time (pure).

A period counts whole days after the day it starts (the start day is not counted) and ends at
the end of its last day; in working days it skips weekends and official holidays on the city's
calendar (行政处罚法 art. 85, 摘要: the law's "二日、三日、五日、七日" are working days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from cityloop.kit.calendar import WorkingCalendar


@dataclass(frozen=True)
class Period:
    code: str
    label: str
    days: int
    working_days: bool
    basis: str


# The seeded rows (editable: LegalPeriod). "待核对" marks periods set by local rules or
# our reading, to be checked by the city against the text it applies.
DEFAULT_PERIODS: tuple[Period, ...] = (
    Period("file", "受案后立案", 7, True, "本地规定示例 (demo data, 待核对)"),
    Period("decide", "立案后作出处罚决定", 90, False, "行政处罚法 第六十条"),
    Period(
        "statement", "陈述申辩期", 3, True, "行政处罚法 第四十四、四十五条 (期限为本地规定, 待核对)"
    ),
    Period("hearing_request", "告知后提出听证要求", 5, True, "行政处罚法 第六十四条第一项"),
    Period("hearing_notice", "听证七日前通知", 7, True, "行政处罚法 第六十四条第二项"),
    Period("deliver", "决定后送达", 7, True, "行政处罚法 第六十一条"),
    Period("pay", "送达后缴纳罚款", 15, False, "行政处罚法 第六十七条"),
    Period("close", "执行完毕后结案", 15, True, "本地规定示例 (demo data, 待核对)"),
    Period("disclose", "送达后公示", 7, True, "行政处罚法 第四十八条 (期限为本地规定, 待核对)"),
)


def due_after(calendar: WorkingCalendar, start: datetime, period: Period) -> datetime:
    day = start.astimezone(calendar.tz).date()
    if not period.working_days:
        last = day + timedelta(days=period.days)
    else:
        last, counted = day, 0
        while counted < period.days:
            last += timedelta(days=1)
            if calendar.is_workday(last):
                counted += 1
    return datetime.combine(last, time(23, 59, 59), calendar.tz)
