"""Evaluation pages (综合评价, R-EV-1..4): for a chosen evaluated kind (监督员, 受理员, 值班长,
派遣员, 专业部门, 区域 at any level) and period (day, week, month, quarter, year or a custom
range; by default the last whole month), the ranking with its indicators, composite score
and grade, the published rates with 环比 / 同比, and the Excel workbook of the same period.

It computes nothing itself: the figures come from `evaluation.service` and the workbook from
`evaluation.report` — the calls `/api/v1/evaluation` makes — under the same reader rules
(`evaluation.service.check_reader`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from cityloop.errors import DomainError, ValidationFailed
from cityloop.evaluation import service as evaluation
from cityloop.evaluation.periods import (
    MAX_CUSTOM_DAYS,
    Period,
    month_period,
    parse_period,
    quarter_period,
    week_period,
)
from cityloop.evaluation.report import XLSX, report_filename, workbook_bytes
from cityloop.web.page import Page, StaffPageDep

router = APIRouter()

# The evaluation API's readers, and department handlers, who read their own departments.
READERS = evaluation.READERS | {"handler"}
UNITS = ("day", "week", "month", "quarter", "year", "custom")
# The input that holds the period for each unit (custom has two: from and to).
UNIT_FIELD = {
    "day": "day",
    "week": "week",
    "month": "month",
    "quarter": "quarter",
    "year": "year",
    "custom": "to",
}
LEVELS = tuple(evaluation.LEVEL_LABELS)
# Enough for every street and community of a city; unit grids beyond it are in the workbook.
ROW_LIMIT = 500


def kinds_for(page: Page) -> tuple[str, ...]:
    """The kinds this user may read (a handler: its own departments only)."""
    if page.role == "handler":
        return ("departments",)
    return evaluation.KINDS


@dataclass
class Choice:
    """What the form asked for, what was wrong with it, and the period it names."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    period: Period | None = None


def defaults(today: date) -> dict[str, str]:
    """Each unit's input filled with the last whole period of that unit before today."""
    last_month = month_period(today.replace(day=1) - timedelta(days=1))
    this_quarter = quarter_period(today)
    return {
        "kind": "departments",
        "level": "street",
        "unit": "month",
        "day": (today - timedelta(days=1)).isoformat(),
        "week": week_period(today - timedelta(days=7)).key,
        "month": last_month.key,
        "quarter": quarter_period(this_quarter.first - timedelta(days=1)).key,
        "year": str(today.year - 1),
        "from": last_month.first.isoformat(),
        "to": last_month.last.isoformat(),
    }


def read_choice(page: Page, query: dict[str, str]) -> Choice:
    """The form's values (defaults for what is not given), checked field by field."""
    today = page.now.astimezone(page.tz).date()
    values = defaults(today)
    for name in values:
        given = query.get(name)
        if given is not None:
            values[name] = given.strip()[:40]
    choice = Choice(values)
    t = page.t
    # A link with only ?period=… (as the API takes it) opens the page on that period.
    if "period" in query and "unit" not in query:
        try:
            named = parse_period(query["period"])
        except ValidationFailed:
            choice.errors["unit"] = t("period_invalid")
            return choice
        values["unit"] = named.kind
        if named.kind == "custom":
            values["from"], values["to"] = named.first.isoformat(), named.last.isoformat()
        else:
            values[UNIT_FIELD[named.kind]] = named.key
    if values["kind"] not in kinds_for(page):
        choice.errors["kind"] = t("choose_from_list")
    if values["level"] not in LEVELS:
        choice.errors["level"] = t("choose_from_list")
    unit = values["unit"]
    if unit not in UNITS:
        choice.errors["unit"] = t("choose_from_list")
        return choice
    if unit == "custom":
        choice.period = _custom(values, choice.errors, page)
        return choice
    name = UNIT_FIELD[unit]
    try:
        period = parse_period(values[name], field=name)
    except ValidationFailed:
        period = None
    if period is None or period.kind != unit:
        choice.errors[name] = t(f"period_invalid_{unit}")
    else:
        choice.period = period
    return choice


def _custom(values: dict[str, str], errors: dict[str, str], page: Page) -> Period | None:
    days: dict[str, date] = {}
    for name in ("from", "to"):
        try:
            days[name] = date.fromisoformat(values[name])
        except ValueError:
            errors[name] = page.t("period_invalid_day")
    if errors:
        return None
    if days["to"] < days["from"]:
        errors["to"] = page.t("period_range_order")
        return None
    if (days["to"] - days["from"]).days + 1 > MAX_CUSTOM_DAYS:
        errors["to"] = page.t("period_range_long")
        return None
    return parse_period(f"{days['from'].isoformat()}..{days['to'].isoformat()}")


# -- showing numbers ---------------------------------------------------------------------------
def show(value: Any, fmt: str) -> str:
    if value is None or value == "":
        return "—"
    if fmt == "rate":
        return f"{float(value) * 100:.2f}%"
    if fmt == "score":
        return f"{float(value):.2f}"
    if fmt == "int":
        return str(int(value))
    return str(value)


def show_change(value: float | None, fmt: str, lang: str) -> tuple[str, str]:
    """(text, sign) of a 环比/同比 change: rates move in percentage points, counts in %."""
    if value is None:
        return "—", ""
    sign = "up" if value > 0 else "down" if value < 0 else ""
    if fmt == "rate":
        unit = " pp" if lang == "en" else "个百分点"
        return f"{value * 100:+.2f}{unit}", sign
    return f"{value * 100:+.1f}%", sign


def period_label(period: dict[str, str] | Period, lang: str) -> str:
    data = period.as_dict() if isinstance(period, Period) else period
    return data["key"] if lang == "en" else data["label"]


# -- pages -------------------------------------------------------------------------------------
@router.get("/evaluation")
def evaluation_page(page: StaffPageDep) -> Response:
    """The ranking of one kind for one period, and the published rates (R-EV-1..4)."""
    if not page.allowed(READERS):
        return page.forbidden_role()
    choice = read_choice(page, dict(page.request.query_params))
    if choice.errors or choice.period is None:
        return _render(page, choice, status_code=422)
    kind, level, period = choice.values["kind"], choice.values["level"], choice.period
    try:
        ctx = evaluation.context(
            page.db, period, actor=page.actor, now=page.now, calendar=page.calendar, kind=kind
        )
        rows = evaluation.with_comparison(
            ctx, kind, evaluation.table(ctx, kind, level=level), level=level
        )
        rates = evaluation.rates(ctx, compare=True)
    except DomainError as exc:
        page.db.rollback()
        return page.error(exc.status_code, exc.message)
    return _render(page, choice, ctx=ctx, rows=rows, rates=rates)


def _render(
    page: Page,
    choice: Choice,
    *,
    ctx: evaluation.Context | None = None,
    rows: list[dict[str, Any]] | None = None,
    rates: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    lang = page.lang
    kind = choice.values["kind"]
    columns: list[tuple[str, str, str]] = []
    shown: list[dict[str, str]] = []
    rate_rows: list[dict[str, Any]] = []
    periods: dict[str, str] = {}
    if ctx is not None and rows is not None and rates is not None:
        periods = {name: period_label(p, lang) for name, p in rates["periods"].items()}
        columns = [
            (key, label_en if lang == "en" else label, fmt)
            for key, label, label_en, fmt in evaluation.COLUMNS[kind]
        ]
        columns += [
            ("score_previous", f"{page.t('score_previous')}（{periods['previous']}）", "score"),
            ("score_last_year", f"{page.t('score_last_year')}（{periods['last_year']}）", "score"),
        ]
        shown = [
            {
                "_grade": str(row.get("grade") or ""),
                **{key: show(row.get(key), fmt) for key, _label, fmt in columns},
            }
            for row in rows[:ROW_LIMIT]
        ]
        for item in rates["items"]:
            previous = show_change(item.get("change_previous"), item["format"], lang)
            last_year = show_change(item.get("change_last_year"), item["format"], lang)
            rate_rows.append(
                {
                    "key": item["key"],
                    "label": item["label_en"] if lang == "en" else item["label"],
                    "value": show(item["value"], item["format"]),
                    "previous": show(item.get("previous"), item["format"]),
                    "change_previous": previous[0],
                    "sign_previous": previous[1],
                    "last_year": show(item.get("last_year"), item["format"]),
                    "change_last_year": last_year[0],
                    "sign_last_year": last_year[1],
                }
            )
    kinds = [
        (k, page.t(f"eval_kind_{k}") if lang == "en" else evaluation.KIND_LABELS[k])
        for k in kinds_for(page)
    ]
    levels = [
        (lvl, page.t(f"eval_level_{lvl}") if lang == "en" else evaluation.LEVEL_LABELS[lvl])
        for lvl in LEVELS
    ]
    return page.render(
        "evaluation.html",
        status_code,
        values=choice.values,
        errors=choice.errors,
        kinds=kinds,
        levels=levels,
        units=UNITS,
        period=choice.period,
        period_text=period_label(choice.period, lang) if choice.period else "",
        periods=periods,
        as_of=ctx.window.end if ctx is not None else None,
        facts=ctx.source.mode if ctx is not None else "",
        columns=columns,
        rows=shown,
        total_rows=len(rows or []),
        row_limit=ROW_LIMIT,
        rates=rate_rows,
        can_download=page.role != "handler",
    )


@router.get("/evaluation/report.xlsx")
def evaluation_workbook(page: StaffPageDep, period: str = "") -> Response:
    """The workbook `/api/v1/evaluation/report.xlsx` gives, for the console's session."""
    if not page.allowed(READERS):
        return page.forbidden_role()
    try:
        chosen = parse_period(period)
        ctx = evaluation.context(
            page.db, chosen, actor=page.actor, now=page.now, calendar=page.calendar, kind="report"
        )
        body = workbook_bytes(ctx)
    except DomainError as exc:
        page.db.rollback()
        return page.error(exc.status_code, exc.message)
    return page.finish(
        Response(
            body,
            media_type=XLSX,
            headers={
                "Content-Disposition": "attachment; filename*=UTF-8''" + report_filename(ctx.period)
            },
        )
    )
