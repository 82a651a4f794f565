"""Status changes of a partner's case go back to the partner's webhook (R-IN-5): queued in
the same transaction as the change, delivered by the worker after commit, once each, in
order; ordinary cases queue nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from cityloop.outbox.delivery import deliver_due
from cityloop.outbox.models import OutboxMessage
from tests.cases.helpers import YINGCUI, Desk, department_id, point_in
from tests.conftest import _bound_session_factory


def _pending(session) -> int:
    # The partner's pushes only: the outbox carries the staff's SMS notifications too.
    return session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.channel == "webhook")
    )


def _case_id(client, auth, ticket: str) -> int:
    found = client.get("/api/v1/cases", params={"ticket": ticket}, headers=auth("admin")).json()
    return int(found["items"][0]["id"])


def _set_webhook(client, auth, code: str, url: str | None) -> None:
    partner = next(
        p for p in client.get("/api/v1/partners", headers=auth("admin")).json() if p["code"] == code
    )
    response = client.patch(
        f"/api/v1/partners/{partner['id']}", json={"webhook_url": url}, headers=auth("admin")
    )
    assert response.status_code == 200, response.text


def test_status_changes_reach_the_partner_once_after_commit(
    client, auth, clock, city_session, city_connection, city_places, partner_keys, receiver
):
    desk = Desk(client, auth)
    _set_webhook(client, auth, "12345-xiamen", receiver.url)
    lon, lat = point_in(city_places, YINGCUI)
    forwarded = client.post(
        "/api/v1/partners/reports",
        json={
            "ticket_id": "XM12345-0815",
            "class_code": "03001",
            "description": "市民来电：垃圾桶满溢，异味严重",
            "lon": lon,
            "lat": lat,
            "reporter_name": "陈先生",
            "reporter_phone": "13711112222",
        },
        headers={"X-Api-Key": partner_keys["12345-xiamen"]},
    )
    assert forwarded.status_code == 201, forwarded.text
    ticket = forwarded.json()["ticket"]
    case_id = _case_id(client, auth, ticket)
    # An inspector's own case moves too, and queues nothing.
    ordinary = desk.report(
        "inspector",
        source="inspector",
        class_code="21004",
        description="污水冒溢",
        lon=lon,
        lat=lat,
    )
    desk.act("operator", ordinary["id"], "file")

    desk.act("operator", case_id, "file")
    desk.act(
        "dispatcher", case_id, "dispatch", department_id=department_id(city_session, "D-350203")
    )
    # A refused action writes nothing, and so queues nothing.
    desk.act("operator", case_id, "close", expect=409)
    assert _pending(city_session) == 2
    assert receiver.received == []  # nothing leaves from inside a request

    factory = _bound_session_factory(city_connection)
    report = deliver_due(factory, now=clock.now())
    again = deliver_due(factory, now=clock.now())

    # The partner's two pushes (the same run also delivers the staff's notifications).
    assert report.delivered >= 2 and again.sent == 0
    assert len(receiver.received) == 2
    bodies = [r.body for r in receiver.received]
    assert [(b["from_state"], b["state"], b["status"]) for b in bodies] == [
        ("reported", "filed", "open"),
        ("filed", "dispatched", "open"),
    ]
    assert all(b["ticket_id"] == "XM12345-0815" and b["ticket"] == ticket for b in bodies)
    assert bodies[1]["department"] == "思明区城市管理办公室"
    assert bodies[1]["due_at"] is not None
    for received in receiver.received:
        raw = str(received.body)
        assert "13711112222" not in raw and "陈先生" not in raw


def test_a_partner_without_a_webhook_gets_no_pushes(
    client, auth, city_session, city_places, partner_keys
):
    lon, lat = point_in(city_places, YINGCUI)
    forwarded = client.post(
        "/api/v1/partners/reports",
        json={
            "ticket_id": "110-77",
            "class_code": "02014",
            "description": "机动车乱停放",
            "lon": lon,
            "lat": lat,
        },
        headers={"X-Api-Key": partner_keys["110-xiamen"]},
    )
    case_id = _case_id(client, auth, forwarded.json()["ticket"])
    Desk(client, auth).act("operator", case_id, "reject", reason="属交警职责，已转交")
    assert _pending(city_session) == 0
