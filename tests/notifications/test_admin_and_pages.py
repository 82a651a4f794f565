"""Rules, templates and department webhooks are data an administrator edits (issue 13):
bad input is a 422 naming the field and keeps nothing; an edit is in force at once, with no
restart; the console's inbox, preferences and administration pages work through the same
services. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import select

from cityloop.notifications.models import Notification, NotificationRule
from tests.cases.helpers import YINGCUI, Desk, department_id, point_in
from tests.web.conftest import csrf_of, form_login


def test_bad_rules_templates_and_webhooks_are_refused_naming_the_field(client, auth, city_session):
    admin = auth("admin")
    siming = department_id(city_session, "D-350203")
    cases = [
        (
            "put",
            f"/api/v1/departments/{siming}/webhook",
            {"webhook_url": "ftp://siming.example/hook", "webhook_secret": "x" * 20},
            "webhook_url",
        ),
        (
            "put",
            f"/api/v1/departments/{siming}/webhook",
            {"webhook_url": "https://siming.example/hook", "webhook_secret": "short"},
            "webhook_secret",
        ),
        (
            "put",
            "/api/v1/notification-templates/case_assigned",
            {"title": "新案件 {ticket}", "body": "请处理 {no_such_thing}"},
            "body",
        ),
        (
            "post",
            "/api/v1/notification-rules",
            {
                "event": "dispatch",
                "recipient": "role",
                "role": "janitor",
                "channels": ["inbox"],
                "template": "case_assigned",
            },
            "role",
        ),
        (
            "post",
            "/api/v1/notification-rules",
            {
                "event": "teleport",
                "recipient": "department",
                "channels": ["inbox"],
                "template": "case_assigned",
            },
            "event",
        ),
        (
            "post",
            "/api/v1/notification-rules",
            {
                "event": "dispatch",
                "recipient": "department",
                "channels": ["pager"],
                "template": "case_assigned",
            },
            "channels",
        ),
        (
            "post",
            "/api/v1/notification-rules",
            {
                "event": "dispatch",
                "recipient": "department",
                "channels": ["inbox"],
                "template": "nope",
            },
            "template",
        ),
    ]
    for method, url, body, field in cases:
        response = getattr(client, method)(url, json=body, headers=admin)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["field"] == field, response.json()
    assert city_session.scalar(select(NotificationRule.id)) is None  # nothing half-written
    # Not an administrator: refused.
    refused = client.get("/api/v1/notification-rules", headers=auth("handler"))
    assert refused.status_code == 403


def test_an_edited_rule_and_template_are_in_force_at_once(client, auth, city_session, city_places):
    admin = auth("admin")
    rules = client.get("/api/v1/notification-rules", headers=admin).json()
    assert any(r["event"] == "dispatch" and r["recipient"] == "department" for r in rules)
    # The leader is told of every urgency-A dispatch too, in the words the admin wrote.
    created = client.post(
        "/api/v1/notification-rules",
        json={
            "event": "dispatch",
            "recipient": "role",
            "role": "leader",
            "channels": ["inbox"],
            "template": "case_assigned",
            "urgencies": "A",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    saved = client.put(
        "/api/v1/notification-templates/case_assigned",
        json={"title": "【紧急】{ticket} 派至{department}", "body": "{class_name}，{due_at}前处置"},
        headers=admin,
    )
    assert saved.status_code == 200, saved.text
    # The defaults were copied into the table with the first edit: all of them still apply.
    assert len(client.get("/api/v1/notification-rules", headers=admin).json()) == len(rules) + 1

    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    for urgency in ("A", "C"):
        case = desk.report(
            None,
            source="public",
            class_code="09005",
            urgency=urgency,
            lon=lon + (0.0005 if urgency == "C" else 0),
            lat=lat,
            description=f"店外经营 {urgency}",
        )
        desk.act("operator", case["id"], "file")
        desk.act(
            "dispatcher",
            case["id"],
            "dispatch",
            department_id=department_id(city_session, "D-350203"),
        )
    leader = client.get("/api/v1/me/notifications", headers=auth("leader")).json()
    assert [n["title"] for n in leader["items"]] == [
        f"【紧急】{leader['items'][0]['ticket']} 派至思明区城市管理办公室"
    ]
    handler = client.get("/api/v1/me/notifications", headers=auth("handler")).json()
    assert len(handler["items"]) == 2
    assert all(n["title"].startswith("【紧急】") for n in handler["items"])


def test_the_inbox_and_preferences_pages(client, auth, city_session, city_places):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    case = desk.report(
        None, source="public", class_code="09005", lon=lon, lat=lat, description="店外经营"
    )
    desk.act("operator", case["id"], "file")
    desk.act(
        "dispatcher", case["id"], "dispatch", department_id=department_id(city_session, "D-350203")
    )

    form_login(client, "handler")
    desk_page = client.get("/desk/handle")
    assert 'id="notify-badge"' in desk_page.text and "/web/static/js/notify.js" in desk_page.text
    inbox = client.get("/inbox")
    assert inbox.status_code == 200 and case["ticket"] in inbox.text
    line = city_session.scalar(select(Notification).where(Notification.ticket == case["ticket"]))
    assert line is not None
    opened = client.post(
        f"/inbox/{line.id}/open", data={"csrf_token": csrf_of(inbox.text)}, follow_redirects=False
    )
    assert opened.status_code == 303 and opened.headers["location"] == f"/case/{case['id']}"
    city_session.refresh(line)
    assert line.read_at is not None

    prefs = client.get("/inbox/preferences")
    assert 'value="dispatch:sms"' in prefs.text
    # Everything ticked but the SMS of a dispatch: that one is muted.
    on = [v for v in re.findall(r'name="on" value="([^"]+)"', prefs.text) if v != "dispatch:sms"]
    saved = client.post(
        "/inbox/preferences",
        data={"csrf_token": csrf_of(prefs.text), "on": on},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    muted = client.get("/api/v1/me/notification-preferences", headers=auth("handler")).json()
    assert muted["muted"] == [{"event": "dispatch", "channel": "sms"}]


def test_the_administration_page_edits_rules_and_shows_the_outbox(client, city_session):
    form_login(client, "admin")
    page = client.get("/admin/notifications")
    assert page.status_code == 200 and "case_assigned" in page.text and 'id="outbox"' in page.text
    token = csrf_of(page.text)
    bad = client.post(
        "/admin/notifications/rules",
        data={
            "csrf_token": token,
            "event": "dispatch",
            "recipient": "role",
            "role": "janitor",
            "channels": ["inbox"],
            "template": "case_assigned",
        },
    )
    assert bad.status_code == 422 and "janitor" in bad.text
    bad_tpl = client.post(
        "/admin/notifications/templates/case_assigned",
        data={"csrf_token": token, "title": "{ticket}", "body": "{oops}"},
    )
    assert bad_tpl.status_code == 422 and "oops" in bad_tpl.text
    siming = department_id(city_session, "D-350203")
    bad_hook = client.post(
        f"/admin/notifications/webhooks/{siming}",
        data={
            "csrf_token": token,
            "webhook_url": "javascript:alert(1)",
            "webhook_secret": "x" * 20,
        },
    )
    assert bad_hook.status_code == 422
    good = client.post(
        "/admin/notifications/rules",
        data={
            "csrf_token": token,
            "event": "supervise",
            "recipient": "role",
            "role": "leader",
            "channels": ["inbox"],
            "template": "case_supervised",
            "quiet_hours": "yes",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert (
        city_session.scalar(select(NotificationRule.id).where(NotificationRule.role == "leader"))
        is not None
    )
