"""Early warning per street × class (seed 004's 城管"天气预报").

The expected count of a day is learned from the street × class's own history: its mean daily
count over the last `HISTORY_DAYS`, times the weekday's share of that history (relative to an
even week), times a trend (the last 28 days against the whole window), times the season (the
same weeks a year ago against last year's mean, where the history reaches back that far).
An alert is raised when the observed count runs well above it: at least `MIN_OBSERVED`
reports, and above expected + 3·√expected (a Poisson upper bound). Alerts are rows
(`EarlyWarning`) on a console page; `publish_alert()` is the one place they leave cityloop
once the event stream lands."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.learning.models import EarlyWarning

HISTORY_DAYS = 180  # the mean, weekday and trend
SEASON_DAYS = 400  # a year back and a fortnight around, for the season
TREND_DAYS = 28
MIN_OBSERVED = 5
TZ = ZoneInfo("Asia/Shanghai")


def _days(
    session: Session, since: datetime, until: datetime
) -> dict[tuple[str, str], dict[date, int]]:
    counts: dict[tuple[str, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for street, code, at in session.execute(
        select(Case.street, Case.class_code, Case.created_at).where(
            Case.created_at >= since, Case.created_at < until, Case.street.is_not(None)
        )
    ):
        counts[(str(street), code)][at.astimezone(TZ).date()] += 1
    return counts


def expected(history: dict[date, int], day: date, first: date, upto: date | None = None) -> float:
    """The expected count on `day` from the days [first, upto) (upto defaults to `day`): the
    recent mean × the weekday's share × the trend of the last 28 days × the season (this time
    of year against the whole of last year, where the history reaches back a year)."""
    upto = upto or day
    start = max(first, upto - timedelta(days=HISTORY_DAYS))
    span = (upto - start).days
    if span <= 0:
        return 0.0
    window = {d: n for d, n in history.items() if start <= d < upto}
    mean = sum(window.values()) / span
    if mean == 0:
        return 0.0
    same_weekday = sum(n for d, n in window.items() if d.weekday() == day.weekday())
    weekday_factor = min(max(same_weekday / max(span / 7, 1) / mean, 0.5), 2.0)
    recent_first = max(start, upto - timedelta(days=TREND_DAYS))
    recent = sum(n for d, n in window.items() if d >= recent_first)
    trend = min(max(recent / max((upto - recent_first).days, 1) / mean, 0.5), 2.0)
    return mean * weekday_factor * trend * season(history, day, first, upto)


def season(history: dict[date, int], day: date, first: date, upto: date | None = None) -> float:
    """The daily rate a year ago (±14 days) against the daily rate of all the history known
    [first, upto); 1 without a year of it (rain seasons, festivals, summer night markets)."""
    year_ago = day - timedelta(days=365)
    if year_ago - timedelta(days=14) < first:
        return 1.0
    upto = upto or day
    yearly = sum(n for d, n in history.items() if first <= d < upto) / max((upto - first).days, 1)
    around = sum(n for d, n in history.items() if abs((d - year_ago).days) <= 14) / 29
    if yearly == 0:
        return 1.0
    return min(max(around / yearly, 0.5), 3.0)


def forecast(
    session: Session, *, street: str, class_code: str, now: datetime, days: int = 7
) -> list[tuple[date, float]]:
    """The expected counts for the coming days of one street × class."""
    today = now.astimezone(TZ).date()
    first = today - timedelta(days=SEASON_DAYS)
    start = datetime.combine(first, datetime.min.time(), TZ)
    history = _days(session, start, now).get((street, class_code), {})
    return [
        (
            today + timedelta(days=i),
            round(expected(history, today + timedelta(days=i), first, today), 3),
        )
        for i in range(days)
    ]


def detect(session: Session, *, now: datetime) -> list[EarlyWarning]:
    """Alerts for today (so far) where the observed count runs well above the expected one."""
    today = now.astimezone(TZ).date()
    first = today - timedelta(days=SEASON_DAYS)
    start = datetime.combine(first, datetime.min.time(), TZ)
    counts = _days(session, start, now + timedelta(seconds=1))
    existing = {
        (w.street, w.class_code)
        for w in session.scalars(select(EarlyWarning).where(EarlyWarning.day == today))
    }
    alerts = []
    for (street, code), history in counts.items():
        observed = history.get(today, 0)
        if observed < MIN_OBSERVED or (street, code) in existing:
            continue
        mean = expected(history, today, first)
        if observed > mean + 3 * math.sqrt(max(mean, 1.0)):
            alert = EarlyWarning(
                street=street,
                class_code=code,
                day=today,
                expected=round(mean, 3),
                observed=observed,
                created_at=now,
            )
            session.add(alert)
            alerts.append(alert)
    session.flush()
    for alert in alerts:
        publish_alert(session, alert)
    return alerts


def publish_alert(session: Session, alert: EarlyWarning) -> None:
    """Where an early-warning alert leaves cityloop: the notification channels (branch
    `notifications`) will publish it from here as an event. Today the row and its console page
    are the alert; this marks it as handed over."""
    alert.published = True
    session.flush()


def recent(session: Session, *, now: datetime, days: int = 14) -> list[EarlyWarning]:
    since = now.astimezone(TZ).date() - timedelta(days=days)
    return list(
        session.scalars(
            select(EarlyWarning)
            .where(EarlyWarning.day >= since)
            .order_by(EarlyWarning.day.desc(), EarlyWarning.id.desc())
        )
    )
