"""`cityloop demo` — the main job — builds the demo city with cases in every stage of the loop,
through the same services a real city uses (intake channels, auto-dispatch, duplicates)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.audit import verify_audit
from cityloop.cases.models import Case
from cityloop.db import Base, make_engine
from cityloop.demo.build import build
from tests.conftest import TZ


def test_the_demo_city_builds_with_cases_across_the_loop(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        summary = build(
            session,
            cases=150,
            now=datetime(2026, 11, 20, 16, 0, tzinfo=TZ),
            media_dir=tmp_path / "media",
        )
        session.commit()
        assert summary["cases"] == 150 and summary["unit_grid"] > 10_000
        states = Counter(session.scalars(select(Case.state)))
        assert {"reported", "pending_filing", "filed", "dispatched", "closed", "archived"} <= set(
            states
        ), states
        checked, findings = verify_audit(session)
        assert checked > 500 and findings == []
    engine.dispose()
