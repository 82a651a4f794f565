"""Concurrent decisions (issue 14, "Bad input and concurrency"): 16 officers deciding 16
cases at once get 16 numbers of the bureau's 处罚决定书 sequence with no gap and no repeat;
two officers deciding the same case at once: one wins, the other gets 409 or a refusal and
writes nothing. On committed databases (SQLite and PostgreSQL), one session per thread."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.db import begin_write, make_engine
from cityloop.documents import storage
from cityloop.documents.models import Document
from cityloop.enforcement import service
from cityloop.enforcement.ids import id_check_char
from cityloop.enforcement.models import EnforcementCase, EnforcementEvent, Officer
from cityloop.errors import DomainError
from cityloop.org.models import User
from cityloop.taxonomy.service import working_calendar
from cityloop.workflow.actors import Actor
from tests.conftest import TZ

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=TZ)
DECIDE_AT = datetime(2026, 9, 10, 9, 0, tzinfo=TZ)


def _ready_cases(session: Session, count: int) -> tuple[list[int], list[int]]:
    """`count` cases in 告知 with the statement waived: each may be decided now."""
    users = {u.username: Actor.of(u) for u in session.scalars(select(User))}
    calendar = working_calendar(session)
    pair = list(session.scalars(select(Officer.id).order_by(Officer.id).limit(2)))
    ids = []
    for index in range(count):
        body = f"35020319900101{index:03d}"
        party = service.create_party(
            session,
            {"kind": "person", "name": f"当事人{index}", "id_number": body + id_check_char(body)},
            now=T0,
            secret="t",
        )
        record = service.create(
            session,
            {
                "violation_code": "SR-DW-01",
                "party_id": party.id,
                "facts": "店外经营",
                "lon": 118.13,
                "lat": 24.49,
            },
            users["officer"],
            now=T0,
            calendar=calendar,
        )
        for action, who, payload in (
            ("file", "officer", {}),
            (
                "add_evidence",
                "officer",
                {"officer_ids": pair, "record": {"kind": "inspection_record", "content": "检查"}},
            ),
            ("submit_review", "officer", {}),
            ("review", "enforcement_chief", {"approved": True}),
            ("notify", "officer", {"fine": 500}),
            ("record_statement", "officer", {"waived": True}),
        ):
            service.transition(
                session, record.id, action, users[who], payload, now=T0, calendar=calendar
            )
        ids.append(record.id)
    session.commit()
    return ids, pair


def _decide_all(url: str, targets: list[tuple[int, str]], pair: list[int]) -> list[object]:
    engine = make_engine(url)
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)

    def work(slot: int, case_id: int, username: str) -> None:
        with Session(engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            assert user is not None
            actor = Actor.of(user)
            calendar = working_calendar(session)
            session.commit()  # no read transaction left open: the write begins below
            barrier.wait(30)
            try:
                begin_write(session)
                service.transition(
                    session,
                    case_id,
                    "decide",
                    actor,
                    {"fine": 500, "officer_ids": pair},
                    now=DECIDE_AT,
                    calendar=calendar,
                )
                session.commit()
                results[slot] = "ok"
            except DomainError as exc:
                session.rollback()
                results[slot] = exc.status_code
            except Exception as exc:  # shown in the assertion, not lost in a thread
                session.rollback()
                results[slot] = repr(exc)

    threads = [
        threading.Thread(target=work, args=(slot, case_id, user))
        for slot, (case_id, user) in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    engine.dispose()
    return results


def test_sixteen_decisions_at_once_number_without_gaps(city_db, tmp_path: Path) -> None:
    storage.configure(tmp_path / "documents")
    engine = make_engine(city_db.url)
    with Session(engine) as session:
        ids, pair = _ready_cases(session, 16)
    results = _decide_all(
        city_db.url,
        [(case_id, "officer" if i % 2 else "officer2") for i, case_id in enumerate(ids)],
        pair,
    )
    assert results == ["ok"] * 16
    with Session(engine) as session:
        seqs = sorted(
            session.scalars(select(Document.seq).where(Document.kind == "penalty_decision"))
        )
        assert seqs == list(range(1, 17))
        states = set(session.scalars(select(EnforcementCase.state)))
        assert states == {"decided"}
    engine.dispose()


def test_two_officers_deciding_one_case_one_wins(city_db, tmp_path: Path) -> None:
    storage.configure(tmp_path / "documents")
    engine = make_engine(city_db.url)
    with Session(engine) as session:
        (case_id,), pair = _ready_cases(session, 1)
    results = _decide_all(city_db.url, [(case_id, "officer"), (case_id, "officer2")], pair)
    assert sorted(map(str, results)) == ["409", "ok"]
    with Session(engine) as session:
        decisions = session.scalars(
            select(EnforcementEvent).where(
                EnforcementEvent.case_id == case_id, EnforcementEvent.action == "decide"
            )
        ).all()
        assert len(decisions) == 1
        numbers = session.scalars(
            select(Document.seq).where(Document.kind == "penalty_decision")
        ).all()
        assert list(numbers) == [1]
    engine.dispose()
