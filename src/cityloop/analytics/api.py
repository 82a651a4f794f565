"""REST edge of analytics: heat map and hot spots, high incidence, stages, trends, and the CSV
export of cases. Readable by admin, leader, shiftlead, dispatcher, operator; a handler sees
the cases its department holds only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from cityloop.analytics import service
from cityloop.analytics.schemas import HeatmapOut, IncidenceOut, StagesOut, TrendsOut
from cityloop.deps import ActorDep, CalendarDep, NowDep, SessionDep
from cityloop.evaluation.api import PeriodQuery
from cityloop.evaluation.periods import parse_period
from cityloop.evaluation.rollup import fact_source
from cityloop.evaluation.schemas import PeriodOut

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics 分析"])

ClassQuery = Annotated[
    str | None, Query(description="a class code, or a prefix (06 = 市容环境类)", max_length=8)
]
SourceQuery = Annotated[str | None, Query(description="intake source, e.g. inspector, public")]
StateQuery = Annotated[str | None, Query(description="current state, or open / closed")]
RegionQuery = Annotated[
    str | None, Query(description="region code prefix (district, street, community, grid)")
]


def _filter(
    class_code: str | None,
    source: str | None,
    state: str | None,
    region: str | None,
    department_id: int | None,
) -> service.CaseFilter:
    f = service.CaseFilter(class_code, source, state, region, department_id)
    f.check()
    return f


def _scope(
    session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep, period: str
) -> service.Scope:
    p = parse_period(period)
    service.check_reader(actor)
    source = fact_source(session, calendar=calendar)
    return service.scope(session, source, p, actor=actor, now=now, calendar=calendar)


@router.get("/heatmap", response_model=HeatmapOut, summary="Heat map and hot spots 热力图")
def heatmap(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    period: PeriodQuery,
    resolution: Annotated[
        int, Query(ge=0, le=10, description="h3 resolution (10 ≈ 76 m edge)")
    ] = 9,
    class_code: ClassQuery = None,
    source: SourceQuery = None,
    state: StateQuery = None,
    region: RegionQuery = None,
    department_id: int | None = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    boundaries: bool = False,
) -> HeatmapOut:
    f = _filter(class_code, source, state, region, department_id)
    sc = _scope(session, actor, now, calendar, period)
    result = service.heatmap(sc, f, resolution=resolution, top=top, boundaries=boundaries)
    return HeatmapOut(period=PeriodOut(**sc.period.as_dict()), as_of=now, **result)


@router.get("/incidence", response_model=IncidenceOut, summary="High incidence 高发分析")
def incidence(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    period: PeriodQuery,
    class_code: ClassQuery = None,
    source: SourceQuery = None,
    state: StateQuery = None,
    region: RegionQuery = None,
    department_id: int | None = None,
    top: Annotated[int, Query(ge=1, le=100)] = 20,
) -> IncidenceOut:
    f = _filter(class_code, source, state, region, department_id)
    sc = _scope(session, actor, now, calendar, period)
    result = service.incidence(sc, f, top=top)
    return IncidenceOut(period=PeriodOut(**sc.period.as_dict()), as_of=now, **result)


@router.get(
    "/stages", response_model=StagesOut, summary="Time per stage, waiting, overdue 环节分析"
)
def stages(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    period: PeriodQuery,
    class_code: ClassQuery = None,
    source: SourceQuery = None,
    region: RegionQuery = None,
    department_id: int | None = None,
) -> StagesOut:
    f = _filter(class_code, source, None, region, department_id)
    sc = _scope(session, actor, now, calendar, period)
    return StagesOut(period=PeriodOut(**sc.period.as_dict()), as_of=now, **service.stages(sc, f))


@router.get("/trends", response_model=TrendsOut, summary="Trends 趋势")
def trends(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    period: PeriodQuery,
    bucket: Literal["day", "week", "month"] = "day",
    class_code: ClassQuery = None,
    source: SourceQuery = None,
    region: RegionQuery = None,
    department_id: int | None = None,
) -> TrendsOut:
    f = _filter(class_code, source, None, region, department_id)
    sc = _scope(session, actor, now, calendar, period)
    result = service.trends(sc, f, bucket=bucket)
    return TrendsOut(period=PeriodOut(**sc.period.as_dict()), as_of=now, **result)


@router.get(
    "/cases.csv",
    summary="Export cases as CSV 案卷导出",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with BOM"}},
)
def export_cases(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    period: PeriodQuery,
    class_code: ClassQuery = None,
    source: SourceQuery = None,
    state: StateQuery = None,
    region: RegionQuery = None,
    department_id: int | None = None,
    urgency: Annotated[str | None, Query(pattern="^[ABC]$")] = None,
) -> StreamingResponse:
    p = parse_period(period)
    f = service.CaseFilter(class_code, source, state, region, department_id)
    service.check_export(actor, f, urgency)
    factory = request.app.state.session_factory

    def rows() -> Iterator[str]:
        # The request's session closes when this handler returns; the stream reads with its
        # own session so that a large export never sits in memory.
        with factory() as own:
            yield from service.export_cases(
                own, p, f, actor=actor, calendar=calendar, now=now, urgency=urgency
            )

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="cases-{p.key}.csv"'},
    )
