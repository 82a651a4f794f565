"""Numbers under concurrency (issue 14 "Bad input and concurrency", R-LE-1): 16 transactions
at once, each in its own thread and session, take 1..16 with no gap and no repeat; those that
roll back give their numbers back. Run on PostgreSQL (row locks) and SQLite (one writer)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cityloop.documents import service
from cityloop.documents.models import Document, DocumentIssuer, DocumentSequence
from tests.documents.conftest import NOW, story_context

WRITERS = 16


@pytest.fixture
def committed_issuer(empty_engine: Engine) -> Iterator[str]:
    """An issuer committed for real (the threads' sessions must see it), removed afterwards."""
    code = "race-" + secrets.token_hex(4)
    with Session(empty_engine) as session:
        service.register_issuer(session, code, "竞争测试局", code)
        session.commit()
    yield code
    with Session(empty_engine) as session:
        for model in (Document, DocumentSequence):
            session.execute(delete(model).where(model.issuer_code == code))
        session.execute(delete(DocumentIssuer).where(DocumentIssuer.code == code))
        session.commit()


def _race(engine: Engine, issuer_code: str, fails: set[int]) -> list[BaseException]:
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            with Session(engine) as session:
                start.wait()
                service.issue_document(
                    session,
                    kind="penalty_decision",
                    issuer_code=issuer_code,
                    context=story_context(party_name=f"当事人{index}"),
                    subject_type="enforcement_case",
                    subject_id=index,
                    now=NOW,
                    actor_name="并发测试",
                )
                if index in fails:
                    session.rollback()  # e.g. the decision's own checks failed after numbering
                else:
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _numbers(engine: Engine, issuer_code: str) -> list[int]:
    with Session(engine) as session:
        return sorted(
            session.scalars(select(Document.seq).where(Document.issuer_code == issuer_code))
        )


def test_sixteen_concurrent_documents_take_one_to_sixteen(empty_engine, committed_issuer):
    errors = _race(empty_engine, committed_issuer, fails=set())
    assert not errors, errors
    assert _numbers(empty_engine, committed_issuer) == list(range(1, WRITERS + 1))


def test_rolled_back_documents_leave_no_gap(empty_engine, committed_issuer):
    errors = _race(empty_engine, committed_issuer, fails={0, 5, 10, 15})
    assert not errors, errors
    assert _numbers(empty_engine, committed_issuer) == list(range(1, WRITERS - 4 + 1))
    with Session(empty_engine) as session:
        following = service.issue_document(
            session,
            kind="penalty_decision",
            issuer_code=committed_issuer,
            context=story_context(),
            subject_type="enforcement_case",
            subject_id=99,
            now=NOW,
            actor_name="并发测试",
        )
        assert following.seq == WRITERS - 4 + 1
        session.rollback()
