"""Benchmark the document generator (issue 14, Performance): PDF documents per second on one
core, and a 200-document dossier exported as one zip stream.

    .venv/bin/python bench/bench_documents.py [--documents 300] [--dossier 200] [--pg URL]

Pinned to one CPU (sched_setaffinity). Measured, each on a fresh database file:

* render  — fill the template and draw the PDF (`render.fill` + `render.render_pdf`): the
            generator's own cost;
* issue   — `service.issue_document` end to end in its own committed transaction, as a flow
            calls it: the sequence row locked and moved, the PDF drawn, its bytes hashed and
            stored, the row written, commit (SQLite file in WAL; PostgreSQL too with --pg);
* dossier — `service.export_dossier` of one subject's documents streamed to nowhere: time, and
            the peak of Python's allocations (tracemalloc, a second pass) against the
            archive's size.

The font is the one documents use on this machine (render.font_path); CITYLOOP_DOCUMENT_FONT
picks another, e.g. the Noto Serif SC copied by `make web-assets`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
import tracemalloc
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from cityloop.db import Base, make_engine
from cityloop.documents import render, service, storage
from cityloop.models import load_all_models

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 8, 27, 16, 5, tzinfo=TZ)
CONTEXT: dict[str, Any] = {
    "party_name": "张某",
    "party_address": "厦门市思明区厦禾路1108号",
    "facts": "当事人将厦禾路1108号一套住宅擅自分隔为多套出租，经现场勘验，"
    "房屋内新增隔墙五处、卫生间四处。" * 2,
    "violation_name": "擅自改变房屋结构",
    "legal_basis": "某法规第某条（基准测试用占位）",
    "penalty_basis": "某法规第某条（基准测试用占位）",
    "penalty_text": "罚款人民币伍仟元",
    "fine_yuan": 5000,
    "officers": ["林执法 35020300001", "陈执法 35020300002"],
    "place": "厦门市思明区厦禾路1108号",
    "case_number": "思城管立〔2026〕第7号",
    "date": date(2026, 8, 27),
    "payment_text": "十五日内到指定银行缴纳",
    "remedy_text": "（基准测试用占位）",
}


def one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "not pinned"


def bench_render(count: int) -> tuple[float, int]:
    body = service.packaged_kinds()["penalty_decision"].body
    sizes = []
    started = time.perf_counter()
    for seq in range(1, count + 1):
        number = f"厦思城管罚决字〔2026〕第{seq}号"
        filled = {**CONTEXT, "issuer_name": "厦门市思明区城市管理局", "number": number}
        data = render.render_pdf(
            issuer_name="厦门市思明区城市管理局",
            title="行政处罚决定书",
            number=number,
            text=render.fill(body, filled),
        )
        sizes.append(len(data))
    return time.perf_counter() - started, int(statistics.median(sizes))


def issue_many(engine: Engine, count: int, subject_id: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        with Session(engine) as session:
            service.issue_document(
                session,
                kind="penalty_decision",
                issuer_code="xm-siming-cgj",
                context=CONTEXT,
                subject_type="enforcement_case",
                subject_id=subject_id,
                now=NOW,
                actor_name="基准测试",
            )
            session.commit()
    return time.perf_counter() - started


def prepare(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        service.register_issuer(session, "xm-siming-cgj", "厦门市思明区城市管理局", "厦思城管")
        service.seed_kinds(session)
        session.commit()


def bench_dossier(engine: Engine, subject_id: int) -> tuple[float, int, int, int]:
    with Session(engine) as session:
        started = time.perf_counter()
        total = sum(len(c) for c in service.export_dossier(session, "enforcement_case", subject_id))
        elapsed = time.perf_counter() - started
        stored = sum(d.size for d in service.documents_of(session, "enforcement_case", subject_id))
        stream = service.export_dossier(session, "enforcement_case", subject_id)
        tracemalloc.start()
        for _chunk in stream:
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return elapsed, total, stored, peak


def pg_engine(url: str) -> tuple[Engine, str, Engine]:
    name = "cityloop_bench_documents_" + secrets.token_hex(3)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_engine(make_url(url).set(database=name).render_as_string(False)), name, admin


def main() -> None:
    parser = argparse.ArgumentParser(description="document generator benchmark")
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--dossier", type=int, default=200)
    parser.add_argument("--pg", default="", help="a PostgreSQL URL to also issue on")
    args = parser.parse_args()
    load_all_models()
    pinned = one_core()
    tmp = Path(tempfile.mkdtemp(prefix="cityloop-bench-documents-"))
    storage.configure(tmp)
    t0 = time.perf_counter()
    font = render.font_path()
    print(f"font {font} (registered in {time.perf_counter() - t0:.2f} s); {pinned}")

    bench_render(5)  # warm: glyph widths, subsets
    elapsed, size = bench_render(args.documents)
    print(
        f"render   {args.documents} PDFs: {args.documents / elapsed:7.1f} /s "
        f"({elapsed / args.documents * 1000:.2f} ms each, median {size / 1024:.1f} KB)"
    )

    engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
    prepare(engine)
    issue_many(engine, 5, subject_id=99)
    elapsed = issue_many(engine, args.documents, subject_id=1)
    print(
        f"issue    {args.documents} on SQLite: {args.documents / elapsed:7.1f} /s "
        f"({elapsed / args.documents * 1000:.2f} ms each, one transaction each)"
    )
    if args.pg:
        pg, name, admin = pg_engine(args.pg)
        try:
            prepare(pg)
            issue_many(pg, 5, subject_id=99)
            elapsed = issue_many(pg, args.documents, subject_id=1)
            print(
                f"issue    {args.documents} on PostgreSQL: {args.documents / elapsed:7.1f} /s "
                f"({elapsed / args.documents * 1000:.2f} ms each)"
            )
        finally:
            pg.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()

    issue_many(engine, args.dossier, subject_id=2)
    elapsed, total, stored, peak = bench_dossier(engine, subject_id=2)
    print(
        f"dossier  {args.dossier} documents: {elapsed * 1000:.0f} ms, "
        f"{total / 1e6:.2f} MB zip ({stored / 1e6:.2f} MB of PDFs), "
        f"peak {peak / 1024:.0f} KB allocated = {peak / total:.1%} of the archive"
    )


if __name__ == "__main__":
    main()
