"""Issue 23 item 8 (R-SV urging, R-CL-5 the timeline): an action that leaves the case as it
is and that nothing else refuses twice (`urge`, `supervise`, `feedback`) cannot tell a repeat
from a new one, so the API wants the case's `version` for it; 20 simultaneous urges with the
version the callers loaded write one event, the other 19 are 409. The supervision sweep's own
urging (no API) is unaffected."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.app import create_app
from cityloop.cases.models import CaseEvent
from cityloop.cases.states import BY_ACTION
from cityloop.db import make_engine
from cityloop.org.models import User
from cityloop.org.service import issue_token
from tests.cases.helpers import YINGCUI, department_id, point_in
from tests.conftest import TEST_SETTINGS, TZ


def test_state_preserving_actions_are_named_by_the_table():
    assert {"urge", "supervise", "feedback"} == {
        name for name, row in BY_ACTION.items() if row.repeats_unnoticed
    }
    assert BY_ACTION["pass_down"].keeps_state and not BY_ACTION["pass_down"].repeats_unnoticed


def test_twenty_simultaneous_urges_write_one_event(city_db, city_places):
    from datetime import datetime

    settings = TEST_SETTINGS.model_copy(
        update={"database_url": city_db.url, "data_dir": city_db.data_dir}
    )
    engine = make_engine(city_db.url)
    app = create_app(settings, engine=engine)
    app.state.places = lambda: city_places
    with Session(engine) as session:
        tokens = {
            name: {
                "Authorization": "Bearer "
                + issue_token(
                    session.scalar(select(User).where(User.username == name)),
                    settings.secret_key,
                    60,
                    datetime.now(TZ),
                )
            }
            for name in ("operator", "dispatcher", "leader")
        }
        department = department_id(session, "D-350203")
    lon, lat = point_in(city_places, YINGCUI)
    with TestClient(app) as client:
        created = client.post(
            "/api/v1/reports",
            json={
                "source": "public",
                "class_code": "06010",
                "description": "暴露垃圾",
                "lon": lon,
                "lat": lat,
            },
        ).json()
        case_id = created["id"]
        for user, action, body in (
            ("operator", "file", {}),
            ("dispatcher", "dispatch", {"department_id": department}),
        ):
            done = client.post(
                f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=tokens[user]
            )
            assert done.status_code == 200, done.text
        version = done.json()["version"]

        unversioned = client.post(
            f"/api/v1/cases/{case_id}/actions/urge", json={}, headers=tokens["leader"]
        )
        assert unversioned.status_code == 422, unversioned.text
        assert unversioned.json()["field"] == "version"

        barrier = threading.Barrier(20)
        statuses: list[int] = []

        def urge() -> None:
            barrier.wait()
            response = client.post(
                f"/api/v1/cases/{case_id}/actions/urge",
                json={"version": version, "note": "请尽快处置"},
                headers=tokens["leader"],
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=urge) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert sorted(statuses) == [200] + [409] * 19, statuses
    with Session(engine) as session:
        urges = session.scalar(
            select(func.count())
            .select_from(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.action == "urge")
        )
    engine.dispose()
    assert urges == 1
