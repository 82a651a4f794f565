"""Benchmark: enforcement transitions per second against the case loop's, in the same run, on
the same database and engine (issue 14: goal ≥ 0.9 of the loop's rate).

The loop: bench_loop's path (report → file → dispatch → submit_result → approve_result →
report_check → close). Enforcement: register → file → add_evidence → submit_review → review →
notify → record_statement → decide → deliver → record_payment → close, each step its own
transaction through `enforcement.service.transition()`. Six of those steps issue a numbered
PDF (立案审批表, 事先告知书, 处罚决定书, 送达回证, 结案审批表; reportlab, a few ms each): the
rate is given for the steps without a document (the engine alone, what the goal compares) and
for all steps. PDFs per second on one core are given too.

Run: .venv/bin/python bench/bench_enforcement.py [--cases 100] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loop import TZ, jpeg, loop_rate, pg_database, prepare
from cityloop.db import begin_write
from cityloop.documents import storage
from cityloop.enforcement import service
from cityloop.enforcement.ids import id_check_char
from cityloop.enforcement.models import Officer
from cityloop.media.service import store_photo
from cityloop.models import load_all_models
from cityloop.org.models import User
from cityloop.taxonomy.service import working_calendar
from cityloop.workflow.actors import Actor

DOCUMENT_STEPS = {"file", "notify", "decide", "deliver", "close"}


def enforcement_rate(engine: Engine, cases: int, media_dir: Path) -> dict[str, float]:
    with Session(engine) as session:
        users = {u.username: Actor.of(u) for u in session.scalars(select(User))}
        calendar = working_calendar(session)
        pair = list(session.scalars(select(Officer.id).order_by(Officer.id).limit(2)))
        photo = store_photo(session, jpeg(), "bench.jpg", directory=media_dir, now=datetime.now(TZ))
        photo_id = photo.id
        # One party per case: the same party again would be a repeat offence (a higher tier).
        parties = []
        for index in range(cases):
            body = f"350203199001{index % 28 + 1:02d}{index % 1000:03d}"[:17]
            party = service.create_party(
                session,
                {"kind": "person", "name": "张三", "id_number": body + id_check_char(body)},
                now=datetime.now(TZ),
                secret="bench",
            )
            parties.append(party.id)
        session.commit()
    steps: list[tuple[str, str, dict[str, object]]] = [
        ("file", "officer", {}),
        ("add_evidence", "officer", {"officer_ids": pair, "photos": [photo_id]}),
        ("submit_review", "officer", {}),
        ("review", "enforcement_chief", {"approved": True}),
        ("notify", "officer", {"fine": 300}),
        ("record_statement", "officer", {"waived": True}),
        ("decide", "officer", {"fine": 300, "officer_ids": pair}),
        ("deliver", "officer", {"method": "direct"}),
        ("record_payment", "officer", {"amount": 300}),
        ("close", "enforcement_chief", {}),
    ]
    spent: dict[bool, float] = defaultdict(float)
    counted: dict[bool, int] = defaultdict(int)
    now = datetime(2026, 9, 2, 9, 0, tzinfo=TZ)
    for index in range(cases):
        started = time.perf_counter()
        with Session(engine) as session:
            begin_write(session)
            record = service.create(
                session,
                {
                    "violation_code": "SR-DW-01",
                    "party_id": parties[index],
                    "facts": f"bench {index}",
                    "lon": 118.131,
                    "lat": 24.493,
                },
                users["officer"],
                now=now,
                calendar=calendar,
            )
            session.commit()
            record_id = record.id
        spent[False] += time.perf_counter() - started
        counted[False] += 1
        for action, user, payload in steps:
            now += timedelta(seconds=1)
            started = time.perf_counter()
            with Session(engine) as session:
                begin_write(session)
                service.transition(
                    session,
                    record_id,
                    action,
                    users[user],
                    dict(payload),
                    now=now,
                    calendar=calendar,
                )
                session.commit()
            document = action in DOCUMENT_STEPS
            spent[document] += time.perf_counter() - started
            counted[document] += 1
    total = spent[False] + spent[True]
    return {
        "engine_only": counted[False] / spent[False],
        "all": (counted[False] + counted[True]) / total,
        "transitions": counted[False] + counted[True],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    load_all_models()
    with tempfile.TemporaryDirectory() as tmp:
        storage.configure(Path(tmp) / "documents")
        targets = [("SQLite (WAL file)", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if not args.sqlite_only:
            try:
                targets.append(("PostgreSQL", pg_database(args.pg_url, "cityloop_bench_enf")))
            except Exception as exc:
                print(f"PostgreSQL skipped: {exc}")
        print(
            f"{'database':<18} {'loop tr/s':>10} {'enf tr/s (no doc)':>18} {'ratio':>7} "
            f"{'enf tr/s (all)':>15} {'ratio':>7}"
        )
        for label, url in targets:
            engine = prepare(url)
            loop, _ = loop_rate(engine, args.cases, Path(tmp) / "media")
            enf = enforcement_rate(engine, args.cases, Path(tmp) / "media")
            print(
                f"{label:<18} {loop:>10.1f} {enf['engine_only']:>18.1f} "
                f"{enf['engine_only'] / loop:>7.3f} {enf['all']:>15.1f} {enf['all'] / loop:>7.3f}"
                f"   ({int(enf['transitions'])} enforcement transitions)"
            )
            engine.dispose()


if __name__ == "__main__":
    main()
