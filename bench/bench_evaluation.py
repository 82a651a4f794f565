"""Benchmark: the month evaluation report and the heat map over a large synthetic history.

For each database (SQLite file, PostgreSQL): build the demo city, write N synthetic cases with
realistic timelines (bench/synthetic_history.py: bulk rows shaped like transition()'s, no
hash chain), derive the rollups (`evaluation.rollup.rebuild`, what the worker keeps current),
then time, warm, the median of several runs:

- month report: every table of the month (inspectors, operators, shift leaders, dispatchers,
  departments, the five region levels) and the published rates with 环比/同比 — what
  `GET /api/v1/evaluation/report.xlsx` computes — and, separately, writing the workbook;
- heat map: case counts per h3 cell (resolution 9) for the month, and for the whole year.

Run: .venv/bin/python bench/bench_evaluation.py --cases 1000000 [--backends sqlite,postgresql]
     [--pg-url URL] [--dir /var/tmp/cityloop-bench] [--reuse]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from cityloop.analytics import service as analytics
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import Actor
from cityloop.db import Base, make_engine
from cityloop.evaluation import rollup, service
from cityloop.evaluation.periods import parse_period
from cityloop.evaluation.report import write_workbook
from cityloop.models import load_all_models
from cityloop.taxonomy.service import working_calendar

TZ = ZoneInfo("Asia/Shanghai")
FIRST_DAY, LAST_DAY = date(2025, 1, 1), date(2026, 12, 31)  # two years of history
MONTH, YEAR = "2026-09", "2026"
NOW = datetime(2027, 1, 1, 8, 0, tzinfo=TZ)
READER = Actor(None, "bench", "admin")


def pg_database(admin_url: str, name: str, *, fresh: bool) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if fresh or exists.first() is None:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of `runs` warm runs (after one warm-up), and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def prepare(engine: Engine, cases: int, *, reuse: bool) -> dict[str, Any]:
    from cityloop.demo.build import build
    from synthetic_history import generate  # this script runs from bench/

    with Session(engine) as session:
        if reuse:
            try:
                have = session.scalar(select(func.count()).select_from(Case)) or 0
            except Exception:  # no schema yet
                session.rollback()
                have = -1
            if have == cases:
                return {"reused": True, "cases": have, **derive_rollups(engine)}
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    out: dict[str, Any] = {}
    with Session(engine) as session:
        build(session, cases=0, now=datetime(2025, 1, 1, 9, 0, tzinfo=TZ))
        session.commit()
    with Session(engine) as session:
        started = time.perf_counter()
        out["generated"] = generate(
            session, cases=cases, first_day=FIRST_DAY, last_day=LAST_DAY, progress=True
        )
        session.commit()
        out["generate_seconds"] = round(time.perf_counter() - started, 1)
    out.update(derive_rollups(engine))
    return out


def derive_rollups(engine: Engine) -> dict[str, Any]:
    """(Re)create the evaluation tables and derive them from the timeline, timed."""
    tables = [t for name, t in Base.metadata.tables.items() if name.startswith("evaluation_")]
    Base.metadata.drop_all(engine, tables=tables)
    Base.metadata.create_all(engine, tables=tables)
    out: dict[str, Any] = {}
    with Session(engine) as session:
        started = time.perf_counter()
        calendar = working_calendar(session)
        result = rollup.rebuild(session, calendar=calendar, now=NOW)
        session.commit()
        out["rollup_rebuild_seconds"] = round(time.perf_counter() - started, 1)
        out["rollup_events"] = result.events
    vacuum(engine)
    return out


def vacuum(engine: Engine) -> None:
    """What autovacuum does after a bulk load: statistics, and on PostgreSQL the visibility
    map that lets index-only scans skip the table."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            for name in Base.metadata.tables:
                if name.startswith("evaluation_") or name in ("cases", "case_events"):
                    conn.execute(text(f"VACUUM ANALYZE {name}"))
        else:
            conn.execute(text("ANALYZE"))


def measure(engine: Engine, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Session(engine) as session:
        calendar = working_calendar(session)
        out["events"] = session.scalar(select(func.count()).select_from(CaseEvent))
        out["cases"] = session.scalar(select(func.count()).select_from(Case))
        month = parse_period(MONTH)

        def context() -> service.Context:
            return service.context(
                session, month, actor=READER, now=NOW, calendar=calendar, kind="report"
            )

        ctx = context()
        assert ctx.source.mode == "rollup", ctx.source.mode
        out["month_cases"] = service.rates(ctx, compare=False)["values"]["reports"]

        def month_report() -> dict[str, Any]:
            c = context()
            tables = {kind: service.table(c, kind) for kind in service.KINDS if kind != "regions"}
            tables["regions"] = service.regions_by_level(c, list(service.LEVEL_LABELS))
            return {"rates": service.rates(c), "tables": tables}

        out["month_report_s"], report = timed(month_report, runs)
        out["month_report_rows"] = sum(
            len(v) if isinstance(v, list) else sum(len(x) for x in v.values())
            for v in report["tables"].values()
        )

        def workbook() -> int:
            buffer = io.BytesIO()
            write_workbook(context(), buffer)
            return len(buffer.getvalue())

        out["month_workbook_s"], size = timed(workbook, max(1, runs // 2))
        out["month_workbook_bytes"] = size

        for label, key in (("month", MONTH), ("year", YEAR)):
            period = parse_period(key)

            def heat(period: Any = period) -> dict[str, Any]:
                source = rollup.fact_source(session, calendar=calendar)
                scope = analytics.scope(
                    session, source, period, actor=READER, now=NOW, calendar=calendar
                )
                return analytics.heatmap(scope, analytics.CaseFilter(), resolution=9)

            out[f"heatmap_{label}_s"], result = timed(heat, runs)
            out[f"heatmap_{label}_cells"] = len(result["cells"])
            out[f"heatmap_{label}_cases"] = result["total"]
        session.rollback()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--dir", default="/var/tmp/cityloop-bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep a database of the same size")
    parser.add_argument("--json", help="append the results to this file")
    parser.add_argument(
        "--measure-only", action="store_true", help="time an existing database as it is"
    )
    args = parser.parse_args()
    load_all_models()
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for backend in args.backends.split(","):
        name = f"cityloop_bench_eval_{args.cases}"
        if backend == "sqlite":
            url = f"sqlite:///{directory / (name + '.db')}"
        else:
            url = pg_database(args.pg_url, name, fresh=not (args.reuse or args.measure_only))
        engine = make_engine(url)
        print(f"== {backend}: {args.cases:,} cases", flush=True)
        built = {} if args.measure_only else prepare(engine, args.cases, reuse=args.reuse)
        print(f"   prepared: {built}", flush=True)
        result = {
            "backend": backend,
            "cases_requested": args.cases,
            **built,
            **measure(engine, args.runs),
        }
        if backend == "sqlite":
            result["db_bytes"] = (directory / (name + ".db")).stat().st_size
        else:
            with engine.connect() as conn:
                result["db_bytes"] = conn.scalar(
                    text("SELECT pg_database_size(current_database())")
                )
        print(json.dumps(result, indent=2, default=str), flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result, default=str) + "\n")
        engine.dispose()


if __name__ == "__main__":
    main()
