"""Everyone who must act is told (issue 13; R-DIS-4, R-HD-1, R-CL-2): seed 002's case reaches
思明区城管办, then 嘉莲街道, then 盈翠社区, and each unit's staff find it in their inbox the
moment it arrives; the grid inspector gets the check task; a citizen is told of the filing,
the rejection (with its reason) and the closing, by SMS through the outbox, their number in no
outbox row; a rolled-back step tells no one. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from cityloop.cases.service import transition
from cityloop.notifications.models import Notification
from cityloop.outbox.models import OutboxMessage
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, Desk, department_id, point_in
from tests.conftest import TZ


def _inbox(client, auth, user: str) -> dict:
    response = client.get("/api/v1/me/notifications", headers=auth(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _tickets(client, auth, user: str) -> list[tuple[str, str | None]]:
    return [(n["event"], n["ticket"]) for n in _inbox(client, auth, user)["items"]]


def test_each_unit_down_the_chain_is_told_when_the_case_reaches_it(
    client, auth, clock, city_session, city_places
):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    created = desk.report(
        "inspector",
        source="inspector",
        class_code="21004",
        urgency="A",
        lon=lon,
        lat=lat,
        description="明发商业广场台球馆外污水横溢，污染路面",
        address="明发商业广场",
    )
    case_id, ticket = created["id"], created["ticket"]
    clock.set(datetime(2026, 8, 27, 16, 8, tzinfo=TZ))
    desk.act("operator", case_id, "file")
    assert _tickets(client, auth, "handler") == []

    clock.set(datetime(2026, 8, 27, 16, 10, tzinfo=TZ))
    desk.act(
        "dispatcher", case_id, "dispatch", department_id=department_id(city_session, "D-350203")
    )
    siming = _inbox(client, auth, "handler")
    assert siming["unread"] == 1
    [line] = siming["items"]
    assert (line["event"], line["ticket"], line["link"]) == ("dispatch", ticket, f"/case/{case_id}")
    assert line["title"] == f"新派遣案件 {ticket}"
    assert "明发商业广场" in line["body"] and "08-28 16:10" in line["body"]  # the deadline
    # Not yet the street or the community: the case has not reached them.
    assert _tickets(client, auth, "handler_jialian") == []
    assert _tickets(client, auth, "handler_yingcui") == []

    clock.set(datetime(2026, 8, 27, 16, 20, tzinfo=TZ))
    desk.act(
        "handler", case_id, "pass_down", department_id=department_id(city_session, "D-350203011")
    )
    assert _tickets(client, auth, "handler_jialian") == [("pass_down", ticket)]
    assert _tickets(client, auth, "handler_yingcui") == []
    clock.set(datetime(2026, 8, 27, 16, 30, tzinfo=TZ))
    desk.act(
        "handler_jialian",
        case_id,
        "pass_down",
        department_id=department_id(city_session, "D-350203011003"),
    )
    assert _tickets(client, auth, "handler_yingcui") == [("pass_down", ticket)]
    # The district office heard once, when it was its turn.
    assert _tickets(client, auth, "handler") == [("dispatch", ticket)]

    # Urged by the shift lead: the community that holds it now is told.
    desk.act("shiftlead", case_id, "urge", note="请尽快处置")
    assert _tickets(client, auth, "handler_yingcui")[0] == ("urge", ticket)

    clock.set(datetime(2026, 8, 28, 11, 0, tzinfo=TZ))
    desk.act(
        "handler_yingcui",
        case_id,
        "submit_result",
        result="物业已疏通管道，路面冲洗干净",
        method="management",
        photos=["after/yingcui-1.jpg"],
    )
    assert ("submit_result", ticket) in _tickets(client, auth, "dispatcher")
    desk.act("dispatcher", case_id, "approve_result")
    # The grid's inspector gets the check task, in the app's inbox and by SMS.
    assert _tickets(client, auth, "inspector")[0] == ("approve_result", ticket)
    sms = city_session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.channel == "sms", OutboxMessage.payload["ticket"].as_string() == ticket
        )
    ).all()
    targets = {m.target_url for m in sms}
    inspector_id = client.get("/api/v1/me", headers=auth("inspector")).json()["id"]
    assert f"user:{inspector_id}" in targets

    # Read one, then all.
    first = _inbox(client, auth, "handler_yingcui")["items"][0]
    read = client.post(
        f"/api/v1/me/notifications/{first['id']}/read", headers=auth("handler_yingcui")
    )
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert _inbox(client, auth, "handler_yingcui")["unread"] == 1
    # Someone else's line is not found for me.
    other = client.post(f"/api/v1/me/notifications/{first['id']}/read", headers=auth("handler"))
    assert other.status_code == 404
    marked = client.post("/api/v1/me/notifications/read-all", headers=auth("handler_yingcui"))
    assert marked.json()["marked"] == 1
    assert _inbox(client, auth, "handler_yingcui")["unread"] == 0


def test_a_citizen_is_told_of_filing_rejection_with_its_reason(
    client, auth, city_places, city_session
):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    phone = "13912345678"
    created = desk.report(
        None,
        source="public",
        class_code="06010",
        lon=lon,
        lat=lat,
        description="小区门口暴露垃圾",
        reporter_name="陈女士",
        reporter_phone=phone,
    )
    ticket = created["ticket"]
    reason = "该区域属物业管理红线内，请联系物业处理"
    desk.act("operator", created["id"], "reject", reason=reason)

    rows = city_session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.target_url == f"case:{created['id']}")
        .order_by(OutboxMessage.id)
    ).all()
    sms = [r for r in rows if r.channel == "sms"]
    assert [r.payload["event"] for r in sms] == ["report", "reject"]
    assert ticket in sms[0].payload["text"]
    assert reason in sms[1].payload["text"]
    assert sms[1].payload["params"]["reason"] == reason
    # The number stays in the cases table: the worker reads it when it sends.
    for row in rows:
        assert phone not in str(row.payload) and phone not in row.target_url

    public = client.get(f"/api/v1/tickets/{ticket}").json()
    assert public["rejection_reason"] == reason
    page = client.get("/h5/track", params={"ticket": ticket})
    assert reason in page.text and phone not in page.text
    notes = client.get(f"/open311/v2/requests/{ticket}.json").json()[0]["status_notes"]
    assert reason in notes


def test_a_rolled_back_step_notifies_no_one(city_session, city_places, clock):
    from cityloop.cases.service import Actor
    from cityloop.intake.service import Report, receive
    from cityloop.org.models import User

    dispatcher = city_session.scalar(select(User).where(User.username == "dispatcher"))
    inspector = city_session.scalar(select(User).where(User.username == "inspector"))
    assert dispatcher is not None and inspector is not None
    calendar = working_calendar(city_session, "Asia/Shanghai")
    lon, lat = point_in(city_places, YINGCUI)

    def counts() -> tuple[int, int]:
        return (
            city_session.scalar(select(func.count()).select_from(Notification)) or 0,
            city_session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
        )

    before = counts()
    # 污水井盖 in 盈翠社区: filed and dispatched to its owner automatically, in this transaction.
    case, _ = receive(
        city_session,
        Report(source="inspector", description="井盖缺失", class_code="01002", lon=lon, lat=lat),
        actor=Actor.of(inspector),
        places=city_places,
        calendar=calendar,
        now=clock.now(),
    )
    if case.state != "dispatched":
        for action, payload in (
            ("file", {}),
            ("dispatch", {"department_id": department_id(city_session, "D-350203")}),
        ):
            transition(
                city_session,
                case.id,
                action,
                Actor.of(dispatcher),
                payload,
                now=clock.now(),
                calendar=calendar,
            )
    assert counts()[0] > before[0]  # written in the step's transaction …
    city_session.rollback()
    assert counts() == before  # … and gone with it
