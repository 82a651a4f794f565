"""Evaluation: the indicators of every post, department and region for a period (R-EV-1..4).

Everything is counted from the fact rows of `rollup.fact_source` (the timeline, derived);
the model (weights, tables, bands, deductions) is data (`scoring`, `EvaluationSetting`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.service import Actor
from cityloop.errors import Forbidden, ValidationFailed
from cityloop.evaluation import repository as repo
from cityloop.evaluation import scoring
from cityloop.evaluation.models import EvaluationSetting
from cityloop.evaluation.periods import Period
from cityloop.evaluation.rollup import FactSource, fact_source
from cityloop.evaluation.scoring import rate
from cityloop.kit.calendar import WorkingCalendar
from cityloop.org.models import User
from cityloop.org.service import descendant_ids

# Who reads what: the command centre reads everything; a department's handler reads the
# figures of its own department (and the units below it) only.
READERS = frozenset({"admin", "leader", "shiftlead", "dispatcher", "operator"})
KINDS = ("inspectors", "operators", "shiftleads", "dispatchers", "departments", "regions")
KIND_LABELS = {
    "inspectors": "监督员",
    "operators": "受理员",
    "shiftleads": "值班长",
    "dispatchers": "派遣员",
    "departments": "专业部门",
    "regions": "区域",
}
LEVEL_LABELS = {
    "district": "区县",
    "street": "街道",
    "community": "社区",
    "resp_grid": "责任网格",
    "unit_grid": "单元网格",
}

# (key, Chinese label, English label, format: int | rate | score | text)
Col = tuple[str, str, str, str]
_TAIL: list[Col] = [
    ("score", "综合指标值", "Composite score", "score"),
    ("grade", "等级", "Grade", "text"),
]
COLUMNS: dict[str, list[Col]] = {
    "inspectors": [
        ("rank", "排名", "Rank", "int"),
        ("name", "监督员", "Inspector", "text"),
        ("grids", "责任区域", "Grids", "text"),
        ("reports", "上报数", "Reports", "int"),
        ("valid_reports", "有效上报数", "Valid reports", "int"),
        ("valid_rate", "有效上报率", "Valid-report rate", "rate"),
        ("filed_in_grid", "立案数", "Filed in grid", "int"),
        ("missed", "漏报数", "Missed reports", "int"),
        ("missed_rate", "漏报率", "Missed-report rate", "rate"),
        ("verify_due", "应核实数", "Verifications due", "int"),
        ("verify_on_time", "按时核实数", "Verified on time", "int"),
        ("verify_rate", "按时核实率", "On-time verification rate", "rate"),
        ("check_due", "应核查数", "Checks due", "int"),
        ("check_on_time", "按时核查数", "Checked on time", "int"),
        ("check_rate", "按时核查率", "On-time check rate", "rate"),
        *_TAIL,
    ],
    "operators": [
        ("rank", "排名", "Rank", "int"),
        ("name", "受理员", "Operator", "text"),
        ("accepted", "受理数", "Accepted", "int"),
        ("accepted_score", "受理数分值", "Acceptance count score", "score"),
        ("verify_sent", "派发核实数", "Verifications sent", "int"),
        ("verify_sent_on_time", "按时派发核实数", "Sent on time", "int"),
        ("verify_send_rate", "核实按时派发率", "On-time verification dispatch rate", "rate"),
        ("closes", "结案数", "Closed", "int"),
        ("closes_on_time", "按时结案数", "Closed within the stage limit", "int"),
        ("close_rate", "按时结案办理率", "On-time closing rate", "rate"),
        *_TAIL,
    ],
    "shiftleads": [
        ("rank", "排名", "Rank", "int"),
        ("name", "值班长", "Shift leader", "text"),
        ("filed", "立案数", "Filed", "int"),
        ("filed_on_time", "按时立案数", "Filed on time", "int"),
        ("file_rate", "按时立案率", "On-time filing rate", "rate"),
        ("voided", "作废数", "Voided after filing", "int"),
        ("accurate_file_rate", "准确立案率", "Accurate filing rate", "rate"),
        ("closes", "结案数", "Closed", "int"),
        ("closes_on_time", "按时结案数", "Closed within the stage limit", "int"),
        ("close_rate", "按时结案率", "On-time closing rate", "rate"),
        *_TAIL,
    ],
    "dispatchers": [
        ("rank", "排名", "Rank", "int"),
        ("name", "派遣员", "Dispatcher", "text"),
        ("dispatched", "派遣数", "Dispatched", "int"),
        ("dispatched_score", "派遣数分值", "Dispatch count score", "score"),
        ("dispatched_on_time", "按时派遣数", "Dispatched on time", "int"),
        ("dispatch_rate", "按时派遣率", "On-time dispatch rate", "rate"),
        ("returned", "被回退数", "Returned by the department", "int"),
        ("accurate_rate", "准确派遣率", "Accurate dispatch rate", "rate"),
        *_TAIL,
    ],
    "departments": [
        ("rank", "排名", "Rank", "int"),
        ("name", "专业部门", "Department", "text"),
        ("due", "应结案数", "Due", "int"),
        ("handled", "处置数", "Handled", "int"),
        ("handling_rate", "处置率", "Disposal rate", "rate"),
        ("handled_on_time", "按期处置数", "Handled on time", "int"),
        ("on_time_handling_rate", "按期处置率", "On-time handling rate", "rate"),
        ("closed", "结案数", "Closed", "int"),
        ("closure_rate", "结案率", "Closure rate", "rate"),
        ("closed_on_time", "按期结案数", "Closed on time", "int"),
        ("on_time_closure_rate", "按期结案率", "On-time closure rate", "rate"),
        ("reworks", "返工数", "Reworks", "int"),
        ("rework_rate", "返工率", "Rework rate", "rate"),
        ("postponements", "延期数", "Postponements", "int"),
        ("postponement_rate", "延期率", "Postponement rate", "rate"),
        ("returns", "回退数", "Returns", "int"),
        ("overdue_open", "超期未结案数", "Overdue, not closed", "int"),
        ("overdue_unhandled", "超期未处置数", "Overdue, not handled", "int"),
        ("case_count_score", "立案数分值", "Case count score", "score"),
        ("base_score", "基准得分", "Score before deductions", "score"),
        ("deduction", "扣分", "Deduction", "score"),
        *_TAIL,
    ],
    "regions": [
        ("rank", "排名", "Rank", "int"),
        ("code", "区域代码", "Code", "text"),
        ("name", "区域", "Region", "text"),
        ("filed", "立案数", "Filed", "int"),
        ("public_filed", "公众举报立案数", "Filed from public reports", "int"),
        ("public_rate", "公众举报率", "Public-report rate", "rate"),
        ("unit_grids", "单元网格数", "Unit grids", "int"),
        ("filing_score", "立案数分值", "Filing count score", "score"),
        ("due", "应结案数", "Due", "int"),
        ("closed", "结案数", "Closed", "int"),
        ("closure_rate", "结案率", "Closure rate", "rate"),
        ("closed_on_time", "按期结案数", "Closed on time", "int"),
        ("on_time_closure_rate", "按期结案率", "On-time closure rate", "rate"),
        ("overdue_open", "超期未结案数", "Overdue, not closed", "int"),
        ("base_score", "基准得分", "Score before deductions", "score"),
        ("deduction", "扣分", "Deduction", "score"),
        *_TAIL,
    ],
}

# The published rates (R-EV-3, R-EV-4): key, Chinese, English, format.
RATE_ITEMS: list[Col] = [
    ("reports", "上报数", "Reports", "int"),
    ("filed", "立案数", "Filed", "int"),
    ("rejected", "不予受理数", "Rejected", "int"),
    ("merged", "合并数", "Merged as duplicates", "int"),
    ("filing_rate", "立案率", "Filing rate", "rate"),
    ("due", "应结案数", "Due", "int"),
    ("closed", "结案数", "Closed", "int"),
    ("closure_rate", "结案率", "Closure rate", "rate"),
    ("closed_on_time", "按期结案数", "Closed on time", "int"),
    ("on_time_closure_rate", "按期结案率", "On-time closure rate", "rate"),
    ("overdue_open", "超期未结案数", "Overdue, not closed", "int"),
    ("handled", "处置数", "Handled", "int"),
    ("disposal_rate", "处置率", "Disposal rate", "rate"),
    ("feedback_reviewed", "处置反馈审核数", "Results reviewed", "int"),
    ("feedback_effective", "有效反馈数", "Results accepted", "int"),
    ("effective_feedback_rate", "有效反馈率", "Effective-feedback rate", "rate"),
    ("return_visits", "回访数", "Return visits", "int"),
    ("satisfied", "满意数", "Satisfied", "int"),
    ("satisfaction_rate", "满意率", "Satisfaction rate", "rate"),
    ("reworks", "返工数", "Reworks", "int"),
    ("rework_rate", "返工率", "Rework rate", "rate"),
    ("postponements", "延期数", "Postponements", "int"),
    ("postponement_rate", "延期率", "Postponement rate", "rate"),
    ("returns", "回退数", "Returns", "int"),
    ("method_service", "服务解决数", "Solved by service", "int"),
    ("method_management", "管理解决数", "Solved by management", "int"),
    ("method_enforcement", "执法解决数", "Solved by enforcement", "int"),
    ("share_service", "服务占比 (7)", "Service share (7)", "rate"),
    ("share_management", "管理占比 (2)", "Management share (2)", "rate"),
    ("share_enforcement", "执法占比 (1)", "Enforcement share (1)", "rate"),
]


# -- the model ------------------------------------------------------------------------------
def load_model(session: Session) -> dict[str, Any]:
    stored = {row.key: row.value for row in session.scalars(select(EvaluationSetting))}
    return scoring.merged_model(stored)


def save_model(
    session: Session, changes: Mapping[str, Any], *, actor: Actor, now: datetime
) -> dict[str, Any]:
    """Store edited keys of the model (admin only); `null` for a key restores its default."""
    if actor.role != "admin":
        raise Forbidden("only an administrator may edit the evaluation model")
    if not isinstance(changes, Mapping) or not changes:
        raise ValidationFailed("send the settings to change", field="body")
    current = load_model(session)
    to_store = {k: v for k, v in changes.items() if v is not None}
    for key in changes:
        if key not in scoring.MODEL_KEYS:
            raise ValidationFailed(
                f"unknown setting {key!r}; one of {', '.join(scoring.MODEL_KEYS)}", field=key
            )
    scoring.validate_model(to_store, base=current)
    restored = {k: scoring.DEFAULT_MODEL[k] for k, v in changes.items() if v is None}
    candidate = scoring.merged_model({**current, **to_store, **restored})
    # Every area class in use needs its filing table, whichever of the two was edited.
    scoring.validate_model(
        {"area_classes": candidate["area_classes"], "region_filing": candidate["region_filing"]},
        base=candidate,
    )
    for key, value in changes.items():
        row = session.get(EvaluationSetting, key)
        if value is None:
            if row is not None:
                session.delete(row)
            continue
        if row is None:
            session.add(
                EvaluationSetting(key=key, value=value, updated_at=now, updated_by=actor.name)
            )
        else:
            row.value, row.updated_at, row.updated_by = value, now, actor.name
    session.flush()
    return load_model(session)


# -- the context of one evaluation ----------------------------------------------------------
@dataclass
class Context:
    session: Session
    period: Period
    window: repo.Window
    source: FactSource
    model: dict[str, Any]
    calendar: WorkingCalendar
    actor: Actor
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def window_of(period: Period, calendar: WorkingCalendar, now: datetime) -> repo.Window:
    start = period.start(calendar.tz)
    return repo.Window(start, min(period.end(calendar.tz), max(now, start)), now)


def context(
    session: Session,
    period: Period,
    *,
    actor: Actor,
    now: datetime,
    calendar: WorkingCalendar,
    kind: str,
    source: FactSource | None = None,
    mode: str = "auto",
) -> Context:
    """Everything one evaluation reads; refuses a reader who may not see `kind` before any
    counting starts."""
    check_reader(actor, kind)
    return Context(
        session,
        period,
        window_of(period, calendar, now),
        source or fact_source(session, calendar=calendar, mode=mode),
        load_model(session),
        calendar,
        actor,
    )


def check_reader(actor: Actor, kind: str) -> None:
    if actor.role in READERS:
        return
    if actor.role == "handler" and kind in ("departments", "rates"):
        return
    raise Forbidden(f"the role {actor.role} may not read the {kind} evaluation")


def visible_departments(session: Session, actor: Actor) -> set[int] | None:
    """None: every department; else the handler's department and the units below it."""
    if actor.role != "handler":
        return None
    if actor.department_id is None:
        return set()
    return set(descendant_ids(session, actor.department_id))


# -- helpers --------------------------------------------------------------------------------
def _sum_into(
    target: dict[Any, dict[str, float]], key: Any, row: Mapping[str, Any], names: Iterable[str]
) -> None:
    bucket = target.setdefault(key, {})
    for name in names:
        bucket[name] = bucket.get(name, 0) + (row.get(name) or 0)


def _level_key(row: Mapping[str, Any], level: str) -> str | None:
    value = row.get(level)
    return str(value) if value else None


def _finish(
    rows: list[dict[str, Any]],
    kind: str,
    model: Mapping[str, Any],
    parts_of: Callable[[dict[str, Any]], Mapping[str, float | None]],
) -> list[dict[str, Any]]:
    for row in rows:
        base = scoring.composite(kind, parts_of(row), model)
        row.setdefault("deduction", 0.0)
        row["base_score"] = None if base is None else round(base, 2)
        score = None if base is None else max(0.0, base - row["deduction"])
        row["score"] = None if score is None else round(score, 2)
        row["grade"] = scoring.grade(row["score"], model)
    scoring.rank(rows)
    return rows


_OVERDUE_KEYS = ("department_id", *repo.REGION_LEVELS)


def _overdue(ctx: Context, w: repo.Window, by: Sequence[str]) -> list[dict[str, Any]]:
    """超期未结案 for a window, asked once at the finest grain and grouped here (departments,
    regions and rates all need it)."""
    key = f"overdue:{w.start.isoformat()}:{w.end.isoformat()}"
    finest: list[dict[str, Any]] = ctx.cached(
        key, lambda: repo.overdue_open(ctx.session, ctx.source, w, _OVERDUE_KEYS)
    )
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in finest:
        group = tuple(row[name] for name in by)
        bucket = grouped.setdefault(group, dict(zip(by, group, strict=True)))
        for name in _OVERDUE_NAMES:
            bucket[name] = bucket.get(name, 0) + row[name]
    return list(grouped.values())


# -- departments ----------------------------------------------------------------------------
_CLOSE_NAMES = ("closed", "closed_on_time", "handled_on_time")
_OVERDUE_NAMES = ("overdue_open", "overdue_submitted", "overdue_submitted_on_time")


def _due_figures(bucket: Mapping[str, float]) -> dict[str, Any]:
    closed = int(bucket.get("closed", 0))
    overdue = int(bucket.get("overdue_open", 0))
    due = closed + overdue
    handled = closed + int(bucket.get("overdue_submitted", 0))
    handled_on_time = int(bucket.get("handled_on_time", 0)) + int(
        bucket.get("overdue_submitted_on_time", 0)
    )
    closed_on_time = int(bucket.get("closed_on_time", 0))
    return {
        "due": due,
        "closed": closed,
        "closed_on_time": closed_on_time,
        "closure_rate": rate(closed, due),
        "on_time_closure_rate": rate(closed_on_time, due),
        "handled": handled,
        "handling_rate": rate(handled, due),
        "handled_on_time": handled_on_time,
        "on_time_handling_rate": rate(handled_on_time, due),
        "overdue_open": overdue,
        "overdue_unhandled": overdue - int(bucket.get("overdue_submitted", 0)),
    }


def departments(ctx: Context) -> list[dict[str, Any]]:
    check_reader(ctx.actor, "departments")
    s, src, w = ctx.session, ctx.source, ctx.window
    figures: dict[Any, dict[str, float]] = {}
    if not w.empty:
        for found in repo.closes(s, src, w, ["department_id"]):
            _sum_into(figures, found["department_id"], found, _CLOSE_NAMES)
        for found in _overdue(ctx, w, ["department_id"]):
            _sum_into(figures, found["department_id"], found, _OVERDUE_NAMES)
        for found in repo.action_counts(
            s, src, w, ["department_id"], ("rework", "approve_postpone", "return")
        ):
            bucket = figures.setdefault(found["department_id"], {})
            bucket[found["action"]] = bucket.get(found["action"], 0) + found["n"]
    names = repo.department_names(s)
    visible = visible_departments(s, ctx.actor)
    rows: list[dict[str, Any]] = []
    for dept_id, bucket in figures.items():
        if dept_id is None or (visible is not None and dept_id not in visible):
            continue
        info = names.get(dept_id, {"code": str(dept_id), "name": str(dept_id), "kind": ""})
        row: dict[str, Any] = {
            "key": info["code"],
            "id": dept_id,
            "code": info["code"],
            "name": info["name"],
            "department_kind": info["kind"],
            **_due_figures(bucket),
            "reworks": int(bucket.get("rework", 0)),
            "postponements": int(bucket.get("approve_postpone", 0)),
            "returns": int(bucket.get("return", 0)),
        }
        row["rework_rate"] = rate(row["reworks"], row["due"])
        row["postponement_rate"] = rate(row["postponements"], row["due"])
        row["case_count_score"] = (
            scoring.table_score(
                ctx.model["count_tables"]["department.case_count"],
                scoring.monthly(row["due"], ctx.period.days),
            )
            if row["due"]
            else None
        )
        row["deduction"] = scoring.deduction(
            "department", row["overdue_open"], row["closed"] - row["closed_on_time"], ctx.model
        )
        rows.append(row)
    return _finish(
        rows,
        "department",
        ctx.model,
        lambda r: {
            "case_count": r["case_count_score"],
            "closure_rate": r["closure_rate"],
            "on_time_handling_rate": r["on_time_handling_rate"],
            "rework_rate": r["rework_rate"],
        },
    )


# -- regions --------------------------------------------------------------------------------
def regions(ctx: Context, level: str) -> list[dict[str, Any]]:
    return regions_by_level(ctx, [level])[level]


def regions_by_level(ctx: Context, levels: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    check_reader(ctx.actor, "regions")
    for level in levels:
        if level not in repo.REGION_LEVELS:
            raise ValidationFailed(
                f"level must be one of {', '.join(repo.REGION_LEVELS)}", field="level"
            )
    s, src, w = ctx.session, ctx.source, ctx.window
    by = [lvl for lvl in repo.REGION_LEVELS if lvl in levels]
    figures: dict[str, dict[str, dict[str, float]]] = {lvl: {} for lvl in by}
    # Unit grids are asked apart: the monthly cube keeps the levels above them.
    passes = [[lvl for lvl in by if lvl != "unit_grid"], [lvl for lvl in by if lvl == "unit_grid"]]
    for group in passes:
        if not group or w.empty:
            continue
        queries = (
            (repo.closes(s, src, w, group), _CLOSE_NAMES),
            (_overdue(ctx, w, group), _OVERDUE_NAMES),
            (
                repo.filings(s, src, w, group, ctx.model["public_sources"]),
                ("filed", "public_filed"),
            ),
        )
        for found_rows, measure_names in queries:
            for found in found_rows:
                for lvl in group:
                    key = _level_key(found, lvl)
                    if key is not None:
                        _sum_into(figures[lvl], key, found, measure_names)
    names = repo.region_names(s)
    grids = repo.unit_grid_counts(s)
    out: dict[str, list[dict[str, Any]]] = {}
    for lvl in by:
        rows: list[dict[str, Any]] = []
        for code, bucket in figures[lvl].items():
            filed = int(bucket.get("filed", 0))
            public_filed = int(bucket.get("public_filed", 0))
            unit_grids = 1 if lvl == "unit_grid" else grids.get(code, 0)
            per_grid = scoring.monthly(filed, ctx.period.days) / max(unit_grids, 1)
            table = ctx.model["region_filing"][scoring.area_class(code, ctx.model)]
            row: dict[str, Any] = {
                "key": code,
                "code": code,
                "level": lvl,
                "name": names.get(code, code),
                "filed": filed,
                "public_filed": public_filed,
                "public_rate": rate(public_filed, filed),
                "unit_grids": unit_grids,
                "filing_score": scoring.table_score(table, per_grid, strict=True),
                **_due_figures(bucket),
            }
            row["deduction"] = scoring.deduction(
                "region", row["overdue_open"], row["closed"] - row["closed_on_time"], ctx.model
            )
            rows.append(row)
        out[lvl] = _finish(
            rows,
            "region",
            ctx.model,
            lambda r: {
                "public_rate": r["public_rate"],
                "filing_count": r["filing_score"],
                "closure_rate": r["closure_rate"],
                "on_time_closure_rate": r["on_time_closure_rate"],
            },
        )
    return out


# -- people ---------------------------------------------------------------------------------
def _person(user: User) -> dict[str, Any]:
    return {
        "key": user.username,
        "id": user.id,
        "username": user.username,
        "name": user.display_name,
    }


def _actor_stats(ctx: Context) -> dict[int, dict[str, dict[str, int]]]:
    def make() -> dict[int, dict[str, dict[str, int]]]:
        stats: dict[int, dict[str, dict[str, int]]] = {}
        if ctx.window.empty:
            return stats
        for row in repo.actor_actions(ctx.session, ctx.source, ctx.window):
            stats.setdefault(row["actor_id"], {})[row["action"]] = {
                "n": int(row["n"]),
                "on_time": int(row["on_time"]),
                "flag_true": int(row["flag_true"]),
            }
        return stats

    result: dict[int, dict[str, dict[str, int]]] = ctx.cached("actor_stats", make)
    return result


def _stat(stats: Mapping[str, Mapping[str, int]], action: str, name: str = "n") -> int:
    return int(stats.get(action, {}).get(name, 0))


def operators(ctx: Context) -> list[dict[str, Any]]:
    check_reader(ctx.actor, "operators")
    stats = _actor_stats(ctx)
    accepted = {} if ctx.window.empty else repo.accepted_cases(ctx.session, ctx.source, ctx.window)
    rows = []
    for user in repo.staff(ctx.session, ["operator"]):
        mine = stats.get(user.id, {})
        count = accepted.get(user.id, 0)
        row = {
            **_person(user),
            "accepted": count,
            "accepted_score": scoring.table_score(
                ctx.model["count_tables"]["operator.accepted"],
                scoring.monthly(count, ctx.period.days),
            ),
            "verify_sent": _stat(mine, "send_to_verify"),
            "verify_sent_on_time": _stat(mine, "send_to_verify", "on_time"),
            "closes": _stat(mine, "close"),
            "closes_on_time": _stat(mine, "close", "on_time"),
        }
        row["verify_send_rate"] = rate(row["verify_sent_on_time"], row["verify_sent"])
        row["close_rate"] = rate(row["closes_on_time"], row["closes"])
        rows.append(row)
    return _finish(
        rows,
        "operator",
        ctx.model,
        lambda r: {
            "accepted": r["accepted_score"] if r["accepted"] else None,
            "verify_send_rate": r["verify_send_rate"],
            "close_rate": r["close_rate"],
        },
    )


def shiftleads(ctx: Context) -> list[dict[str, Any]]:
    check_reader(ctx.actor, "shiftleads")
    stats = _actor_stats(ctx)
    voided = {} if ctx.window.empty else repo.voided_filings(ctx.session, ctx.source, ctx.window)
    rows = []
    for user in repo.staff(ctx.session, ["shiftlead"]):
        mine = stats.get(user.id, {})
        row = {
            **_person(user),
            "filed": _stat(mine, "file"),
            "filed_on_time": _stat(mine, "file", "on_time"),
            "voided": voided.get(user.id, 0),
            "closes": _stat(mine, "close"),
            "closes_on_time": _stat(mine, "close", "on_time"),
        }
        row["file_rate"] = rate(row["filed_on_time"], row["filed"])
        row["accurate_file_rate"] = rate(row["filed"] - row["voided"], row["filed"])
        row["close_rate"] = rate(row["closes_on_time"], row["closes"])
        rows.append(row)
    return _finish(
        rows,
        "shiftlead",
        ctx.model,
        lambda r: {
            "file_rate": r["file_rate"],
            "accurate_file_rate": r["accurate_file_rate"],
            "close_rate": r["close_rate"],
        },
    )


def dispatchers(ctx: Context) -> list[dict[str, Any]]:
    check_reader(ctx.actor, "dispatchers")
    stats = _actor_stats(ctx)
    rows = []
    for user in repo.staff(ctx.session, ["dispatcher"]):
        mine = stats.get(user.id, {})
        count = _stat(mine, "dispatch")
        row = {
            **_person(user),
            "dispatched": count,
            "dispatched_score": scoring.table_score(
                ctx.model["count_tables"]["dispatcher.dispatched"],
                scoring.monthly(count, ctx.period.days),
            ),
            "dispatched_on_time": _stat(mine, "dispatch", "on_time"),
            "returned": _stat(mine, "dispatch", "flag_true"),
        }
        row["dispatch_rate"] = rate(row["dispatched_on_time"], count)
        row["accurate_rate"] = rate(count - row["returned"], count)
        rows.append(row)
    return _finish(
        rows,
        "dispatcher",
        ctx.model,
        lambda r: {
            "dispatched": r["dispatched_score"] if r["dispatched"] else None,
            "dispatch_rate": r["dispatch_rate"],
            "accurate_rate": r["accurate_rate"],
        },
    )


class GridIndex:
    """Which inspectors patrol the place of a row: a row belongs to an inspector when one of
    its codes (unit grid, responsibility grid, community, street) starts with one of the
    inspector's grid codes. Each row is matched once per inspector."""

    PLACES = ("unit_grid", "street", "community", "resp_grid")

    def __init__(self, users: Sequence[User]) -> None:
        self.owners: dict[str, list[int]] = {}
        for user in users:
            for code in {str(c) for c in (user.grid_codes or []) if c}:
                self.owners.setdefault(code, []).append(user.id)
        self.lengths = sorted({len(code) for code in self.owners})
        # A unit grid code (15 digits) asks for rows by unit grid; coarser codes do not.
        self.needs_unit_grids = any(len(code) == 15 and code.isdigit() for code in self.owners)

    def inspectors_of(self, row: Mapping[str, Any]) -> set[int]:
        found: set[int] = set()
        for name in self.PLACES:
            place = row.get(name)
            if not place:
                continue
            for length in self.lengths:
                if len(place) < length:
                    break
                found.update(self.owners.get(place[:length], ()))
        return found


def inspectors(ctx: Context) -> list[dict[str, Any]]:
    check_reader(ctx.actor, "inspectors")
    s, src, w = ctx.session, ctx.source, ctx.window
    users = repo.staff(s, ["inspector"])
    grids = GridIndex(users)
    reports: dict[int, Mapping[str, Any]] = {}
    sums: dict[int, dict[str, int]] = {u.id: {} for u in users}

    def add(user_id: int, name: str, value: int) -> None:
        bucket = sums[user_id]
        bucket[name] = bucket.get(name, 0) + value

    if not w.empty:
        reports = {r["reporter_id"]: r for r in repo.inspector_reports(s, src, w)}
        places = list(GridIndex.PLACES[1:]) + (["unit_grid"] if grids.needs_unit_grids else [])
        for found in repo.filings(s, src, w, places, ctx.model["public_sources"]):
            for user_id in grids.inspectors_of(found):
                add(user_id, "filed_in_grid", int(found["filed"]))
                add(user_id, "missed", int(found["public_filed"]))
        for task in repo.site_tasks(s, src, w, fine=grids.needs_unit_grids):
            for user_id in grids.inspectors_of(task):
                add(user_id, f"{task['stage']}_due", int(task["due"]))
                add(user_id, f"{task['stage']}_on_time", int(task["on_time"]))
    rows = []
    for user in users:
        own = reports.get(user.id, {})
        mine = sums[user.id]
        row: dict[str, Any] = {
            **_person(user),
            "grids": ", ".join(str(c) for c in (user.grid_codes or [])),
            "reports": int(own.get("reports", 0)),
            "valid_reports": int(own.get("valid", 0)),
            **{
                name: mine.get(name, 0)
                for name in (
                    "filed_in_grid",
                    "missed",
                    "verify_due",
                    "verify_on_time",
                    "check_due",
                    "check_on_time",
                )
            },
        }
        row["valid_rate"] = rate(row["valid_reports"], row["reports"])
        row["missed_rate"] = rate(row["missed"], row["filed_in_grid"])
        row["verify_rate"] = rate(row["verify_on_time"], row["verify_due"])
        row["check_rate"] = rate(row["check_on_time"], row["check_due"])
        rows.append(row)
    return _finish(
        rows,
        "inspector",
        ctx.model,
        lambda r: {
            "valid_rate": r["valid_rate"],
            "missed_rate": r["missed_rate"],
            "verify_rate": r["verify_rate"],
            "check_rate": r["check_rate"],
        },
    )


# -- the published rates --------------------------------------------------------------------
def _rates_for(ctx: Context, window: repo.Window, departments: set[int] | None) -> dict[str, Any]:
    s, src = ctx.session, ctx.source
    out: dict[str, Any] = {key: 0 for key, *_ in RATE_ITEMS if not key.endswith("rate")}
    if window.empty:
        return _rate_values(out)
    by = ["department_id"] if departments is not None else []

    def rows(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if departments is None:
            return result
        return [r for r in result if r.get("department_id") in departments]

    bucket: dict[str, float] = {}
    for row in rows(repo.closes(s, src, window, by)):
        for name in (*_CLOSE_NAMES, *(f"method_{m}" for m in repo.METHODS)):
            bucket[name] = bucket.get(name, 0) + row[name]
    for row in rows(_overdue(ctx, window, by)):
        for name in _OVERDUE_NAMES:
            bucket[name] = bucket.get(name, 0) + row[name]
    out.update(_due_figures(bucket))
    for m in repo.METHODS:
        out[f"method_{m}"] = int(bucket.get(f"method_{m}", 0))
    if departments is None:
        created = repo.reported(s, src, window, [])
        if created:
            for name in ("reports", "filed", "rejected", "merged"):
                out[name] = int(created[0][name] or 0)
    for action, total, good in (
        ("submit_result", "feedback_reviewed", "feedback_effective"),
        ("return_visit", "return_visits", "satisfied"),
    ):
        for row in rows(repo.flagged(s, src, window, action, by)):
            known = row["flag_known"] if action == "submit_result" else row["n"]
            out[total] += int(known)
            out[good] += int(row["flag_true"])
    counted = {"rework": "reworks", "approve_postpone": "postponements", "return": "returns"}
    for row in rows(repo.action_counts(s, src, window, by, tuple(counted))):
        out[counted[row["action"]]] += int(row["n"])
    return _rate_values(out)


def _rate_values(out: dict[str, Any]) -> dict[str, Any]:
    out["filing_rate"] = rate(out["filed"], out["filed"] + out["rejected"])
    out["closure_rate"] = rate(out["closed"], out["due"])
    out["on_time_closure_rate"] = rate(out["closed_on_time"], out["due"])
    out["disposal_rate"] = rate(out["handled"], out["due"])
    out["effective_feedback_rate"] = rate(out["feedback_effective"], out["feedback_reviewed"])
    out["satisfaction_rate"] = rate(out["satisfied"], out["return_visits"])
    out["rework_rate"] = rate(out["reworks"], out["due"])
    out["postponement_rate"] = rate(out["postponements"], out["due"])
    methods = sum(out[f"method_{m}"] for m in repo.METHODS)
    for m in repo.METHODS:
        out[f"share_{m}"] = rate(out[f"method_{m}"], methods)
    return out


def _change(fmt: str, value: Any, before: Any) -> float | None:
    if value is None or before is None:
        return None
    if fmt == "rate":
        return float(value) - float(before)  # percentage points, as a fraction
    if before == 0:
        return None
    return (float(value) - float(before)) / float(before)


def rates(ctx: Context, *, compare: bool = True) -> dict[str, Any]:
    """The rates the seeds publish, with 环比 and 同比."""
    check_reader(ctx.actor, "rates")
    visible = visible_departments(ctx.session, ctx.actor)
    now = ctx.window.now
    current = _rates_for(ctx, ctx.window, visible)
    periods = {"current": ctx.period}
    values = {"current": current}
    if compare:
        for name, other in (
            ("previous", ctx.period.previous()),
            ("last_year", ctx.period.last_year()),
        ):
            periods[name] = other
            values[name] = _rates_for(ctx, window_of(other, ctx.calendar, now), visible)
    items = []
    for key, label, label_en, fmt in RATE_ITEMS:
        if visible is not None and key in ("reports", "filed", "rejected", "merged", "filing_rate"):
            continue  # a department is not measured on intake
        item: dict[str, Any] = {
            "key": key,
            "label": label,
            "label_en": label_en,
            "format": fmt,
            "value": current[key],
        }
        if compare:
            item["previous"] = values["previous"][key]
            item["last_year"] = values["last_year"][key]
            item["change_previous"] = _change(fmt, current[key], item["previous"])
            item["change_last_year"] = _change(fmt, current[key], item["last_year"])
        items.append(item)
    return {
        "periods": {name: p.as_dict() for name, p in periods.items()},
        "items": items,
        "values": current,
    }


# -- one table, by kind -----------------------------------------------------------------------
def table(ctx: Context, kind: str, *, level: str = "street") -> list[dict[str, Any]]:
    if kind == "regions":
        return regions(ctx, level)
    makers: dict[str, Callable[[Context], list[dict[str, Any]]]] = {
        "inspectors": inspectors,
        "operators": operators,
        "shiftleads": shiftleads,
        "dispatchers": dispatchers,
        "departments": departments,
    }
    if kind not in makers:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}", field="kind")
    return makers[kind](ctx)


def with_comparison(
    ctx: Context, kind: str, rows: list[dict[str, Any]], *, level: str = "street"
) -> list[dict[str, Any]]:
    """Add each row's score in the previous period and a year earlier (环比 / 同比)."""
    for name, other in (("previous", ctx.period.previous()), ("last_year", ctx.period.last_year())):
        other_ctx = Context(
            ctx.session,
            other,
            window_of(other, ctx.calendar, ctx.window.now),
            ctx.source,
            ctx.model,
            ctx.calendar,
            ctx.actor,
        )
        scores = {r["key"]: r.get("score") for r in table(other_ctx, kind, level=level)}
        for row in rows:
            row[f"score_{name}"] = scores.get(row["key"])
    return rows
