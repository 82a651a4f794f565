"""Audit anchors (issue 20, part 3; R-CL-5): whoever can write the database can rewrite a
timeline's tail and recompute every hash, or delete a whole case, and `verify-audit` alone
sees an intact chain. The signed anchors, kept outside the database, find both, and a forged
anchor too — on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.anchoring.service import LOG_NAME, _canonical, public_hex
from cityloop.cases.audit import event_digest, hashed_fields
from cityloop.cases.models import CaseEvent
from cityloop.cases.service import Actor, transition
from cityloop.config import get_settings
from cityloop.db import make_engine
from cityloop.intake.service import Report, receive
from cityloop.org.models import User
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TZ, CityDb

NOW = datetime(2026, 9, 2, 10, 0, tzinfo=TZ)


@pytest.fixture
def city(
    city_db: CityDb, city_places: PlaceIndex, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, list[int]]]:
    """Three committed cases, three events each, and the anchoring settings of this city."""
    monkeypatch.setenv("CITYLOOP_DATABASE_URL", city_db.url)
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(city_db.data_dir))
    get_settings.cache_clear()
    engine = make_engine(city_db.url)
    lon, lat = point_in(city_places, YINGCUI)
    ids = []
    with Session(engine) as session:
        operator = Actor.of(session.scalar(select(User).where(User.username == "operator")))
        calendar = working_calendar(session)
        for n in range(3):
            case, _ = receive(
                session,
                Report(
                    source="public",
                    class_code="06010",
                    description=f"暴露垃圾 {n}",
                    lon=lon + n * 0.002,
                    lat=lat,
                ),
                actor=operator,
                places=city_places,
                calendar=calendar,
                now=NOW,
            )
            transition(session, case.id, "send_to_verify", operator, {}, now=NOW, calendar=calendar)
            transition(
                session, case.id, "reject", operator, {"reason": "重复"}, now=NOW, calendar=calendar
            )
            ids.append(case.id)
        session.commit()
    yield engine, ids
    engine.dispose()
    get_settings.cache_clear()


def _cli(*args: str) -> Any:
    from cityloop.cli import app

    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def _last_event(session: Session, case_id: int) -> CaseEvent:
    event = session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq.desc())
    )
    assert event is not None
    return event


def test_an_intact_city_matches_its_anchors(city: tuple[Any, list[int]]) -> None:
    made = _cli("audit-anchor")
    assert made.exit_code == 0, made.output
    assert "anchor 1" in made.output
    settings = get_settings()
    assert (settings.anchor_signing_key.stat().st_mode & 0o777) == 0o600
    result = _cli("verify-audit", "--anchors")
    assert result.exit_code == 0, result.output
    assert "1 anchors signed and matching" in result.output


def test_a_rewritten_tail_passes_the_chain_check_but_not_the_anchor(
    city: tuple[Any, list[int]],
) -> None:
    engine, ids = city
    assert _cli("audit-anchor").exit_code == 0
    with Session(engine) as session:
        event = _last_event(session, ids[1])
        event.payload = {"reason": "领导要求不予受理"}
        event.hash = event_digest(event.prev_hash, hashed_fields(event))
        session.commit()
        seq = event.seq
    alone = _cli("verify-audit")
    assert alone.exit_code == 0, alone.output  # the chain itself is consistent again
    result = _cli("verify-audit", "--anchors")
    assert result.exit_code == 1, result.output
    assert f"case {ids[1]}: event {seq} differs" in result.output
    assert f"case {ids[0]}" not in result.output and f"case {ids[2]}" not in result.output


def test_a_deleted_case_is_named(city: tuple[Any, list[int]]) -> None:
    engine, ids = city
    assert _cli("audit-anchor").exit_code == 0
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM case_events WHERE case_id = :c"), {"c": ids[2]})
        conn.execute(text("DELETE FROM cases WHERE id = :c"), {"c": ids[2]})
    assert _cli("verify-audit").exit_code == 0  # no chain is broken: one is simply gone
    result = _cli("verify-audit", "--anchors")
    assert result.exit_code == 1
    assert f"case {ids[2]}: event 3 it anchored is gone" in result.output


def test_later_events_extend_the_chain_without_a_finding(city: tuple[Any, list[int]]) -> None:
    engine, ids = city
    assert _cli("audit-anchor").exit_code == 0
    with Session(engine) as session:
        operator = Actor.of(session.scalar(select(User).where(User.username == "operator")))
        case_id = session.scalar(
            select(CaseEvent.case_id).where(CaseEvent.case_id == ids[0]).limit(1)
        )
        from cityloop.cases.service import add_note, get_case

        add_note(session, get_case(session, int(case_id or 0)), operator, "note", NOW, {"n": "x"})
        session.commit()
    assert _cli("audit-anchor").exit_code == 0
    result = _cli("verify-audit", "--anchors")
    assert result.exit_code == 0, result.output
    assert "2 anchors" in result.output


def _log(settings: Any) -> Path:
    return Path(settings.anchor_log_dir) / LOG_NAME


def test_a_forged_or_altered_anchor_is_named(city: tuple[Any, list[int]]) -> None:
    assert _cli("audit-anchor").exit_code == 0
    settings = get_settings()
    log = _log(settings)
    first = json.loads(log.read_text().splitlines()[0])

    # A second line signed with the forger's own key, naming that key.
    forger = Ed25519PrivateKey.generate()
    forged = {k: v for k, v in first.items() if k != "sig"}
    forged |= {"n": 2, "prev": None, "key": public_hex(forger.public_key())}
    forged["sig"] = base64.b64encode(forger.sign(_canonical(forged))).decode()
    with log.open("a") as out:
        out.write(json.dumps(forged) + "\n")
    result = _cli("verify-audit", "--anchors")
    assert result.exit_code == 1
    assert "anchor 2: signature invalid" in result.output
    assert "anchor 2: the log was cut, reordered" in result.output

    # The genuine line with its root changed.
    altered = dict(first, root="0" * 64)
    log.write_text(json.dumps(altered) + "\n")
    result = _cli("verify-audit", "--anchors")
    assert result.exit_code == 1
    assert "anchor 1: signature invalid" in result.output


def test_verifying_without_a_trusted_key_says_so(
    city: tuple[Any, list[int]], tmp_path: Path
) -> None:
    assert _cli("audit-anchor").exit_code == 0
    get_settings().anchor_signing_key.unlink()
    result = _cli("verify-audit", "--anchors")
    assert result.exit_code == 1
    assert "no trusted anchor public key" in result.output
