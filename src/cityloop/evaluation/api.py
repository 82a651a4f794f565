"""REST edge of evaluation: tables per evaluated kind, the published rates, the model, the
monthly (any period) workbook. Readable by admin, leader, shiftlead, dispatcher, operator; a
handler reads its own department's figures only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from cityloop.deps import ActorDep, CalendarDep, NowDep, SessionDep
from cityloop.evaluation import scoring, service
from cityloop.evaluation.periods import parse_period
from cityloop.evaluation.report import XLSX, report_filename, workbook_bytes
from cityloop.evaluation.schemas import (
    ColumnOut,
    EvaluationTable,
    ModelOut,
    PeriodOut,
    RateItem,
    RatesOut,
)

router = APIRouter(prefix="/api/v1/evaluation", tags=["evaluation 综合评价"])

PeriodQuery = Annotated[
    str,
    Query(
        description="2026-09-02 (day), 2026-W36 (week), 2026-09 (month), 2026-Q3, 2026, or "
        "2026-09-01..2026-09-15",
        examples=["2026-09"],
    ),
]
Kind = Literal["inspectors", "operators", "shiftleads", "dispatchers", "departments", "regions"]
Level = Literal["district", "street", "community", "resp_grid", "unit_grid"]


@router.get("/settings", response_model=ModelOut, summary="The evaluation model 评价模型")
def get_model(session: SessionDep, actor: ActorDep) -> ModelOut:
    service.check_reader(actor, "settings")
    return ModelOut(model=service.load_model(session), defaults=scoring.default_model())


@router.put(
    "/settings",
    response_model=ModelOut,
    summary="Edit the evaluation model (admin) 修改评价模型",
    responses={403: {"description": "not an administrator"}, 422: {"description": "bad model"}},
)
def put_model(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    changes: Annotated[
        dict[str, Any],
        Body(
            description="keys of the model to replace (weights, count_tables, region_filing, "
            "area_classes, bands, deductions, public_sources); null restores a default",
        ),
    ],
) -> ModelOut:
    model = service.save_model(session, changes, actor=actor, now=now)
    return ModelOut(model=model, defaults=scoring.default_model())


@router.get("/rates", response_model=RatesOut, summary="Published rates with 环比/同比 综合指标")
def get_rates(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    period: PeriodQuery,
    compare: bool = True,
) -> RatesOut:
    ctx = service.context(
        session, parse_period(period), actor=actor, now=now, calendar=calendar, kind="rates"
    )
    result = service.rates(ctx, compare=compare)
    return RatesOut(
        periods={k: PeriodOut(**v) for k, v in result["periods"].items()},
        as_of=now,
        facts=ctx.source.mode,
        items=[RateItem(**item) for item in result["items"]],
    )


@router.get(
    "/report.xlsx",
    summary="Evaluation workbook for a period 考核报表 (Excel)",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "the workbook"}},
)
def get_report(
    session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep, period: PeriodQuery
) -> Response:
    ctx = service.context(
        session, parse_period(period), actor=actor, now=now, calendar=calendar, kind="report"
    )
    body = workbook_bytes(ctx)
    name = report_filename(ctx.period)
    return Response(
        body,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


@router.get("/{kind}", response_model=EvaluationTable, summary="Evaluation table 考核排名")
def get_table(
    kind: Kind,
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    period: PeriodQuery,
    level: Level = "street",
    compare: bool = False,
) -> EvaluationTable:
    p = parse_period(period)
    ctx = service.context(session, p, actor=actor, now=now, calendar=calendar, kind=kind)
    rows = service.table(ctx, kind, level=level)
    if compare:
        rows = service.with_comparison(ctx, kind, rows, level=level)
    return EvaluationTable(
        kind=kind,
        kind_label=service.KIND_LABELS[kind]
        + (f"（{service.LEVEL_LABELS[level]}）" if kind == "regions" else ""),
        level=level if kind == "regions" else None,
        period=PeriodOut(**p.as_dict()),
        previous=PeriodOut(**p.previous().as_dict()),
        last_year=PeriodOut(**p.last_year().as_dict()),
        as_of=now,
        facts=ctx.source.mode,
        columns=[
            ColumnOut(key=k, label=zh, label_en=en, format=f)
            for k, zh, en, f in service.COLUMNS[kind]
        ],
        rows=rows,
    )
