"""Who may do what, route by route (issue 7; the roles and scopes of R-GR-3, R-DIS-4, R-HD-*,
R-IN-3): every route of the app × every kind of caller — anonymous (a citizen has no account),
the staff roles, a handler of the department holding the case (A) and one of another
department (B), an inspector of the case's grid and one of another grid, a partner platform's
key, a camera's key and a sensor's key.

The routes are read from the app itself: a route missing from EXPECTED fails the test, so a new
endpoint cannot be added without saying who may call it. Where a caller is not allowed the
answer is 401, 403 or 404 (pages: a redirect to the login page, 403 or 404); where it is
allowed, the answer is not 401/403 (nor 404 when the route names an existing thing) and never
a 5xx. Every request is rolled back before the next, so each caller meets the same world.

Every action of the transition table is checked the same way against the roles the table
gives it. The public surfaces of a case (ticket page, Open311, the citizens' H5 page) never
show the reporter's name or phone; staff outside the call-back desks see them masked.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from cityloop.cases.service import Actor, transition
from cityloop.cases.states import TRANSITIONS
from cityloop.documents.service import issue_document, register_issuer
from cityloop.intake.service import Report, receive
from cityloop.iot.models import DeviceKey, Sensor
from cityloop.org.models import Department, ResponsibilityRule, User
from cityloop.org.service import issue_token
from cityloop.partners.models import Partner
from cityloop.taxonomy.service import working_calendar
from cityloop.web.page import SESSION_COOKIE, _serializer
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TEST_SETTINGS, TZ, jpeg_bytes

# -- callers ----------------------------------------------------------------------------------
USERS = {  # caller → demo username
    "admin": "admin",
    "operator": "operator",
    "shiftlead": "shiftlead",
    "dispatcher": "dispatcher",
    "leader": "leader",
    "inspector": "inspector",  # 嘉莲街道: the case's grid
    "inspector_b": "inspector_huli",  # 江头街道, 湖里区
    "handler_a": "handler",  # 思明区城管办: holds the case
    "handler_b": "handler_huli",  # 湖里区城管办
}
KEYS = {"partner": "demo-12345-key", "camera": "demo-camera-key", "sensor": "demo-sensor-key"}
ANON = "anonymous"
CALLERS = (ANON, *USERS, *KEYS)
# Pages know only the session cookie: a key holder is an anonymous visitor there.
PAGE_CALLERS = (ANON, *USERS)
# The second inspector and handler matter where the rule tells them from the first one.
TWINS = {"inspector_b": "inspector", "handler_b": "handler_a"}

ADMIN = frozenset({"admin"})
CENTRE = frozenset({"admin", "operator", "shiftlead", "dispatcher", "leader"})
OPERATORS = frozenset({"admin", "operator", "shiftlead"})
DISPATCHERS = frozenset({"admin", "dispatcher", "shiftlead"})
INSPECTORS = frozenset({"inspector", "inspector_b"})
HANDLERS = frozenset({"handler_a", "handler_b"})
STAFF = CENTRE | INSPECTORS | HANDLERS
EVERYONE = frozenset(CALLERS)
SEES_CASE = CENTRE | {"inspector", "handler_a"}
READERS = CENTRE  # evaluation and analytics: the command centre
PARTNER = frozenset({"partner"})


@dataclass
class World:
    """Real things for the routes' path parameters, made once per test on the city."""

    case_id: int
    ticket: str
    phone: str
    name: str
    version: int
    call_id: int
    media_id: str
    document_id: int
    inspector_id: int
    department_id: int
    rule_id: int
    partner_id: int
    partner_ticket: str
    message_id: int
    key_id: int
    sensor_code: str
    component_id: str
    lon: float
    lat: float
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    json: Any = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]
    build: Callable[[World, str], Req]
    page: bool = False
    # The route names a thing that exists: an allowed caller must not get 404 either.
    found: bool = True
    # Open to everyone, and its answer is not about who asks (a login form refusing a wrong
    # password, a logout sending to the login page): only never a 5xx.
    any_answer: bool = False


def api(allowed: frozenset[str], build: Callable[[World, str], Req], found: bool = True) -> Rule:
    return Rule(frozenset(allowed), build, page=False, found=found)


def page(
    allowed: frozenset[str],
    build: Callable[[World, str], Req],
    found: bool = True,
    any_answer: bool = False,
) -> Rule:
    return Rule(frozenset(allowed), build, page=True, found=found, any_answer=any_answer)


def get(path: str, **params: Any) -> Callable[[World, str], Req]:
    return lambda w, c: Req("GET", path.format(w=w), params=params or None)


def send(method: str, path: str, body: Any = None) -> Callable[[World, str], Req]:
    def build(w: World, c: str) -> Req:
        payload = body(w) if callable(body) else body
        return Req(method, path.format(w=w), json=payload if payload is not None else {})

    return build


def form(path: str, data: Any = None, files: Any = None) -> Callable[[World, str], Req]:
    def build(w: World, c: str) -> Req:
        fields = data(w) if callable(data) else dict(data or {})
        return Req("POST", path.format(w=w), data=fields, files=files() if files else None)

    return build


def _photo() -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photos", ("p.jpg", jpeg_bytes(), "image/jpeg"))]


def _report(w: World) -> dict[str, Any]:
    return {"class_code": "06010", "description": "暴露垃圾", "lon": w.lon, "lat": w.lat}


def _geojson() -> list[tuple[str, tuple[str, bytes, str]]]:
    empty = json.dumps({"type": "FeatureCollection", "features": []}).encode()
    return [("file", ("empty.geojson", empty, "application/geo+json"))]


def _open311_request(w: World, caller: str) -> Req:
    key = "demo-open311-key" if caller == "partner" else "not-a-key"
    return Req(
        "POST",
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "06010",
            "lat": w.lat,
            "long": w.lon,
            "description": "暴露垃圾",
        },
    )


SINCE = {"since": "2026-08-01T00:00:00+08:00", "until": "2026-09-01T00:00:00+08:00"}
PERIOD = {"period": "2026-08-27"}
FLEET_PERIOD = {"from": "2026-08-27T00:00:00+08:00", "to": "2026-08-28T00:00:00+08:00"}

EXPECTED: dict[tuple[str, str], Rule] = {
    # -- the API: organisation ------------------------------------------------------------
    ("GET", "/healthz"): api(EVERYONE, get("/healthz")),
    ("POST", "/api/v1/auth/token"): api(
        EVERYONE, lambda w, c: Req("POST", "/api/v1/auth/token", data={"username": "x"})
    ),
    ("GET", "/api/v1/auth/lockouts"): api(ADMIN, get("/api/v1/auth/lockouts")),
    ("DELETE", "/api/v1/auth/lockouts/{username}"): api(
        ADMIN, send("DELETE", "/api/v1/auth/lockouts/operator")
    ),
    ("GET", "/api/v1/me"): api(STAFF, get("/api/v1/me")),
    # A wrong current password: the allowed get 422, and nobody's password changes.
    ("POST", "/api/v1/me/password"): api(
        STAFF,
        send(
            "POST",
            "/api/v1/me/password",
            {"current_password": "not-the-password", "new_password": "whatever-long-1"},
        ),
    ),
    ("GET", "/api/v1/departments"): api(STAFF, get("/api/v1/departments")),
    ("POST", "/api/v1/departments"): api(
        ADMIN,
        send("POST", "/api/v1/departments", {"code": "T-M1", "name": "测试", "kind": "utility"}),
    ),
    ("PATCH", "/api/v1/departments/{department_id}"): api(
        ADMIN, send("PATCH", "/api/v1/departments/{w.department_id}", {})
    ),
    ("GET", "/api/v1/users"): api(ADMIN, get("/api/v1/users")),
    ("POST", "/api/v1/users"): api(
        ADMIN,
        send(
            "POST",
            "/api/v1/users",
            {
                "username": "matrix1",
                "display_name": "测试",
                "role": "operator",
                "password": "long-enough-1",
            },
        ),
    ),
    ("PATCH", "/api/v1/users/{user_id}"): api(
        ADMIN, send("PATCH", "/api/v1/users/{w.inspector_id}", {})
    ),
    ("POST", "/api/v1/users/{user_id}/password"): api(
        ADMIN,
        send("POST", "/api/v1/users/{w.inspector_id}/password", {"password": "long-enough-2"}),
    ),
    ("GET", "/api/v1/responsibility-rules"): api(ADMIN, get("/api/v1/responsibility-rules")),
    ("POST", "/api/v1/responsibility-rules"): api(
        ADMIN,
        send(
            "POST",
            "/api/v1/responsibility-rules",
            lambda w: {
                "class_prefix": "0601",
                "region_prefix": YINGCUI,
                "department_id": w.department_id,
            },
        ),
    ),
    ("PATCH", "/api/v1/responsibility-rules/{rule_id}"): api(
        ADMIN, send("PATCH", "/api/v1/responsibility-rules/{w.rule_id}", {})
    ),
    ("DELETE", "/api/v1/responsibility-rules/{rule_id}"): api(
        ADMIN, send("DELETE", "/api/v1/responsibility-rules/{w.rule_id}")
    ),
    # -- intake -----------------------------------------------------------------------------
    ("POST", "/api/v1/reports"): api(
        # Citizens' sources need no login; a key alone is not a login either.
        EVERYONE,
        send("POST", "/api/v1/reports", lambda w: {**_report(w), "source": "public"}),
    ),
    ("POST", "/api/v1/inspector/reports"): api(
        {"admin", "inspector", "inspector_b"},
        form("/api/v1/inspector/reports", _report, _photo),
    ),
    ("POST", "/api/v1/citizen/reports"): api(
        EVERYONE,
        form(
            "/api/v1/citizen/reports",
            lambda w: {
                "description": "暴露垃圾",
                "phone": "13900002222",
                "lon": w.lon,
                "lat": w.lat,
            },
        ),
    ),
    ("POST", "/api/v1/tickets/{ticket}/rating"): api(
        EVERYONE,
        send(
            "POST",
            "/api/v1/tickets/{w.ticket}/rating",
            lambda w: {"phone": w.phone, "satisfied": True},
        ),
    ),
    ("POST", "/api/v1/hotline/calls"): api(
        OPERATORS,
        send(
            "POST",
            "/api/v1/hotline/calls",
            {
                "line": "12345",
                "kind": "consultation",
                "caller_phone": "13800001111",
                "text": "垃圾清运时间？",
                "answer": "每天早上七点",
            },
        ),
    ),
    ("POST", "/api/v1/hotline/calls/{call_id}/place"): api(
        OPERATORS,
        send(
            "POST",
            "/api/v1/hotline/calls/{w.call_id}/place",
            lambda w: {"lon": w.lon, "lat": w.lat},
        ),
    ),
    ("GET", "/api/v1/hotline/calls"): api(OPERATORS | {"leader"}, get("/api/v1/hotline/calls")),
    ("POST", "/api/v1/inspector/positions"): api(
        INSPECTORS,
        send(
            "POST",
            "/api/v1/inspector/positions",
            lambda w: {
                "positions": [{"lon": w.lon, "lat": w.lat, "at": "2026-08-27T16:00:00+08:00"}]
            },
        ),
    ),
    ("GET", "/api/v1/inspectors/positions"): api(CENTRE, get("/api/v1/inspectors/positions")),
    ("GET", "/api/v1/inspectors/{user_id}/track"): api(
        CENTRE | {"inspector"}, get("/api/v1/inspectors/{w.inspector_id}/track", **SINCE)
    ),
    # -- the field force (fleet) -------------------------------------------------------------
    ("GET", "/api/v1/vehicles"): api(CENTRE, get("/api/v1/vehicles")),
    ("POST", "/api/v1/vehicles"): api(
        ADMIN,
        send(
            "POST",
            "/api/v1/vehicles",
            {"plate": "闽D·SEC01", "kind": "sweeper", "terminal_phone": "013900000099"},
        ),
    ),
    ("GET", "/api/v1/vehicles/{vehicle_id}/track"): api(
        CENTRE, get("/api/v1/vehicles/1/track", **FLEET_PERIOD)
    ),
    ("GET", "/api/v1/vehicles/{vehicle_id}/coverage"): api(
        CENTRE, get("/api/v1/vehicles/1/coverage", **FLEET_PERIOD)
    ),
    ("GET", "/api/v1/me/duty"): api(STAFF, get("/api/v1/me/duty")),
    ("POST", "/api/v1/me/duty"): api(
        INSPECTORS | HANDLERS, send("POST", "/api/v1/me/duty", {"status": "on"})
    ),
    ("POST", "/api/v1/me/positions"): api(
        INSPECTORS | HANDLERS,
        send(
            "POST",
            "/api/v1/me/positions",
            lambda w: {
                "positions": [{"lon": w.lon, "lat": w.lat, "at": "2026-08-27T16:00:00+08:00"}]
            },
        ),
    ),
    ("GET", "/api/v1/people/positions"): api(CENTRE, get("/api/v1/people/positions")),
    ("GET", "/api/v1/people/{user_id}/track"): api(
        CENTRE | {"inspector"}, get("/api/v1/people/{w.inspector_id}/track", **FLEET_PERIOD)
    ),
    ("GET", "/api/v1/people/{user_id}/patrol"): api(
        CENTRE | {"inspector"}, get("/api/v1/people/{w.inspector_id}/patrol", **FLEET_PERIOD)
    ),
    ("GET", "/api/v1/fleet/alerts"): api(CENTRE, get("/api/v1/fleet/alerts")),
    ("GET", "/api/v1/fleet/stream"): api(CENTRE, get("/api/v1/fleet/stream", once="true")),
    ("GET", "/api/v1/rosters"): api(CENTRE, get("/api/v1/rosters", **FLEET_PERIOD)),
    ("GET", "/api/v1/rosters/now"): api(STAFF, get("/api/v1/rosters/now")),
    ("POST", "/api/v1/rosters"): api(
        {"admin", "shiftlead"},
        send(
            "POST",
            "/api/v1/rosters",
            lambda w: {
                "team": "inspector",
                "user_id": w.inspector_id,
                "starts_at": "2026-08-28T08:30:00+08:00",
                "ends_at": "2026-08-28T17:30:00+08:00",
            },
        ),
    ),
    # No shift exists in the test city: the editors get 404, everyone else 401/403.
    ("POST", "/api/v1/rosters/{shift_id}/swap"): api(
        {"admin", "shiftlead"},
        send("POST", "/api/v1/rosters/999999/swap", lambda w: {"user_id": w.inspector_id}),
        found=False,
    ),
    ("POST", "/api/v1/rosters/{shift_id}/leave"): api(
        {"admin", "shiftlead"},
        send("POST", "/api/v1/rosters/999999/leave", {"reason": "病假"}),
        found=False,
    ),
    ("POST", "/api/v1/road-segments"): api(
        ADMIN, send("POST", "/api/v1/road-segments", {"type": "FeatureCollection", "features": []})
    ),
    # -- cases ------------------------------------------------------------------------------
    ("GET", "/api/v1/cases"): api(STAFF, get("/api/v1/cases")),
    ("GET", "/api/v1/cases/{case_id}"): api(SEES_CASE, get("/api/v1/cases/{w.case_id}")),
    ("GET", "/api/v1/cases/{case_id}/actions"): api(
        SEES_CASE, get("/api/v1/cases/{w.case_id}/actions")
    ),
    ("POST", "/api/v1/cases/{case_id}/actions/{action}"): api(
        # One action here; every action is checked in test_every_action_follows_the_table.
        {"admin", "dispatcher", "shiftlead", "leader"},
        send("POST", "/api/v1/cases/{w.case_id}/actions/urge", {}),
    ),
    ("GET", "/api/v1/tickets/{ticket}"): api(EVERYONE, get("/api/v1/tickets/{w.ticket}")),
    # -- enforcement (issue 14): the registers to every account, the rest to enforcement
    # staff (none of the matrix's callers but admin and leader); an enforcement case that does
    # not exist answers 404 to those allowed --------------------------------------------------
    ("GET", "/api/v1/enforcement/laws"): api(frozenset(USERS), get("/api/v1/enforcement/laws")),
    ("GET", "/api/v1/enforcement/violations"): api(
        frozenset(USERS), get("/api/v1/enforcement/violations")
    ),
    ("POST", "/api/v1/enforcement/parties"): api(
        {"admin", "leader"},
        send("POST", "/api/v1/enforcement/parties", {"kind": "person", "name": "张三"}),
    ),
    ("POST", "/api/v1/enforcement/cases"): api(
        {"admin"},
        send(
            "POST",
            "/api/v1/enforcement/cases",
            lambda w: {
                "violation_code": "SR-DW-01",
                "party_id": 999_999,
                "facts": "店外经营",
                "lon": w.lon,
                "lat": w.lat,
            },
        ),
        found=False,
    ),
    ("GET", "/api/v1/enforcement/cases/{case_id}"): api(
        {"admin", "leader"}, get("/api/v1/enforcement/cases/999999"), found=False
    ),
    ("GET", "/api/v1/enforcement/cases/{case_id}/actions"): api(
        {"admin", "leader"}, get("/api/v1/enforcement/cases/999999/actions"), found=False
    ),
    ("POST", "/api/v1/enforcement/cases/{case_id}/actions/{action}"): api(
        {"admin", "leader"},
        send("POST", "/api/v1/enforcement/cases/999999/actions/file", {}),
        found=False,
    ),
    ("GET", "/api/v1/public/penalties"): api(EVERYONE, get("/api/v1/public/penalties")),
    ("GET", "/api/v1/enforcement/figures"): api(
        {"admin", "leader"}, get("/api/v1/enforcement/figures")
    ),
    # -- taxonomy, calendar, places, assets ---------------------------------------------------
    ("GET", "/api/v1/classes"): api(EVERYONE, get("/api/v1/classes")),
    # -- learning (issue 18): no model is trained in this world, hence 404 for the allowed
    ("POST", "/api/v1/suggestions"): api(
        CENTRE, send("POST", "/api/v1/suggestions", {"text": "垃圾桶满了"}), found=False
    ),
    ("GET", "/api/v1/suggestions/accuracy"): api(CENTRE, get("/api/v1/suggestions/accuracy")),
    ("GET", "/api/v1/rechecks"): api(CENTRE | INSPECTORS, get("/api/v1/rechecks")),
    # No case is drawn in this world: 404 for everyone who may record an outcome.
    ("POST", "/api/v1/rechecks/{recheck_id}"): api(
        STAFF, send("POST", "/api/v1/rechecks/999999", {"outcome": "confirmed"}), found=False
    ),
    ("PUT", "/api/v1/suggestions/prefile/{source}"): api(
        ADMIN, send("PUT", "/api/v1/suggestions/prefile/wechat", {"enabled": False})
    ),
    ("GET", "/api/v1/classes/{code}"): api(EVERYONE, get("/api/v1/classes/06010")),
    ("PATCH", "/api/v1/classes/{code}"): api(ADMIN, send("PATCH", "/api/v1/classes/06010", {})),
    ("GET", "/api/v1/calendar/overrides"): api(EVERYONE, get("/api/v1/calendar/overrides")),
    ("PUT", "/api/v1/calendar/overrides/{day}"): api(
        ADMIN, send("PUT", "/api/v1/calendar/overrides/2027-10-09", {"is_workday": True})
    ),
    ("GET", "/api/v1/places/locate"): api(
        EVERYONE,
        lambda w, c: Req("GET", "/api/v1/places/locate", params={"lon": w.lon, "lat": w.lat}),
    ),
    ("GET", "/api/v1/regions"): api(EVERYONE, get("/api/v1/regions")),
    ("POST", "/api/v1/places/import"): api(
        ADMIN, form("/api/v1/places/import", {"level": "unit_grid"}, _geojson)
    ),
    ("POST", "/api/v1/address-points/import"): api(
        ADMIN, form("/api/v1/address-points/import", None, _geojson)
    ),
    ("POST", "/api/v1/components"): api(
        ADMIN,
        send(
            "POST",
            "/api/v1/components",
            lambda w: {"identifier": "35020301101099999", "lon": w.lon, "lat": w.lat},
        ),
    ),
    ("GET", "/api/v1/components/{identifier}"): api(
        STAFF, get("/api/v1/components/{w.component_id}")
    ),
    # -- media --------------------------------------------------------------------------------
    ("POST", "/api/v1/media"): api(
        STAFF,
        lambda w, c: Req(
            "POST", "/api/v1/media", files=[("file", ("p.jpg", jpeg_bytes(), "image/jpeg"))]
        ),
    ),
    # Whoever sees a case citing it (issue 23; it was any logged-in user holding the id).
    ("GET", "/api/v1/media/{media_id}"): api(SEES_CASE, get("/api/v1/media/{w.media_id}")),
    # -- documents (文书): the world's document is of a subject no package claims, so only an
    # administrator reads it; a subject's owner widens that with documents.register_reader.
    ("GET", "/api/v1/documents/kinds"): api(STAFF, get("/api/v1/documents/kinds")),
    ("GET", "/api/v1/documents/kinds/{code}"): api(
        STAFF, get("/api/v1/documents/kinds/penalty_decision")
    ),
    ("PUT", "/api/v1/documents/kinds/{code}"): api(
        ADMIN, send("PUT", "/api/v1/documents/kinds/bulletin", {"body": "{content}"})
    ),
    ("GET", "/api/v1/documents/issuers"): api(STAFF, get("/api/v1/documents/issuers")),
    ("PUT", "/api/v1/documents/issuers/{code}"): api(
        ADMIN, send("PUT", "/api/v1/documents/issuers/matrix", {"name": "测试局", "prefix": "测"})
    ),
    ("GET", "/api/v1/documents"): api(
        ADMIN, get("/api/v1/documents", subject_type="matrix", subject_id=1)
    ),
    ("GET", "/api/v1/documents/{document_id}"): api(
        ADMIN, get("/api/v1/documents/{w.document_id}")
    ),
    ("GET", "/api/v1/documents/{document_id}.pdf"): api(
        ADMIN, get("/api/v1/documents/{w.document_id}.pdf")
    ),
    ("GET", "/api/v1/enforcement/documents/{document_id}.pdf"): api(
        ADMIN, get("/api/v1/enforcement/documents/{w.document_id}.pdf")
    ),
    ("GET", "/api/v1/documents/dossiers/{subject_type}/{subject_id}.zip"): api(
        ADMIN, get("/api/v1/documents/dossiers/matrix/1.zip")
    ),
    # -- partners and the outbox -------------------------------------------------------------
    ("POST", "/api/v1/partners/reports"): api(
        PARTNER,
        send(
            "POST",
            "/api/v1/partners/reports",
            lambda w: {**_report(w), "ticket_id": "MATRIX-2"},
        ),
    ),
    ("GET", "/api/v1/partners/reports/{ticket_id}"): api(
        PARTNER, get("/api/v1/partners/reports/{w.partner_ticket}")
    ),
    ("GET", "/api/v1/partners"): api(ADMIN, get("/api/v1/partners")),
    ("POST", "/api/v1/partners"): api(
        ADMIN,
        send(
            "POST",
            "/api/v1/partners",
            {"code": "m-1", "name": "测试平台", "source": "partner_12345"},
        ),
    ),
    ("PATCH", "/api/v1/partners/{partner_id}"): api(
        ADMIN, send("PATCH", "/api/v1/partners/{w.partner_id}", {})
    ),
    ("POST", "/api/v1/partners/{partner_id}/key"): api(
        ADMIN, send("POST", "/api/v1/partners/{w.partner_id}/key")
    ),
    ("DELETE", "/api/v1/partners/{partner_id}/key"): api(
        ADMIN, send("DELETE", "/api/v1/partners/{w.partner_id}/key")
    ),
    ("GET", "/api/v1/outbox"): api(ADMIN, get("/api/v1/outbox")),
    ("GET", "/api/v1/privacy/retention"): api(ADMIN, get("/api/v1/privacy/retention")),
    ("PUT", "/api/v1/privacy/retention/{kind}"): api(
        ADMIN, send("PUT", "/api/v1/privacy/retention/case_reporter", {"months": 24})
    ),
    ("POST", "/api/v1/privacy/requests"): api(
        OPERATORS,
        send("POST", "/api/v1/privacy/requests", {"kind": "access", "phone": "13800000000"}),
    ),
    ("GET", "/api/v1/privacy/contact-views"): api(ADMIN, get("/api/v1/privacy/contact-views")),
    ("POST", "/api/v1/outbox/{message_id}/retry"): api(
        ADMIN, send("POST", "/api/v1/outbox/{w.message_id}/retry")
    ),
    # -- Open311: public reads, writes with a partner's api_key --------------------------------
    ("GET", "/open311/v2/discovery.{fmt}"): api(EVERYONE, get("/open311/v2/discovery.json")),
    ("GET", "/open311/v2/services.{fmt}"): api(EVERYONE, get("/open311/v2/services.json")),
    ("GET", "/open311/v2/services/{service_code}.{fmt}"): api(
        EVERYONE, get("/open311/v2/services/06010.json")
    ),
    ("POST", "/open311/v2/requests.{fmt}"): api(PARTNER, _open311_request),
    ("GET", "/open311/v2/requests.{fmt}"): api(EVERYONE, get("/open311/v2/requests.json")),
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"): api(
        EVERYONE, get("/open311/v2/requests/{w.ticket}.json")
    ),
    ("GET", "/open311/v2/tokens/{token}.{fmt}"): api(
        EVERYONE, get("/open311/v2/tokens/{w.ticket}.json")
    ),
    ("GET", "/open311/v2/{rest:path}"): api(EVERYONE, get("/open311/v2/nothing"), found=False),
    ("POST", "/open311/v2/{rest:path}"): api(
        EVERYONE, send("POST", "/open311/v2/nothing"), found=False
    ),
    # -- IoT: devices with their keys, registries for the administrator -----------------------
    ("POST", "/api/v1/detections"): api(
        {"camera"},
        lambda w, c: Req(
            "POST",
            "/api/v1/detections",
            data={
                "camera": "SM-JL-0002",
                "kind": "street_vending",
                "confidence": "0.9",
                "detected_at": "2026-08-27T15:58:05+08:00",
            },
            files=[("snapshot", ("s.jpg", jpeg_bytes(), "image/jpeg"))],
        ),
    ),
    ("GET", "/api/v1/detections"): api(CENTRE, get("/api/v1/detections")),
    ("GET", "/api/v1/detection-kinds"): api(STAFF, get("/api/v1/detection-kinds")),
    ("PATCH", "/api/v1/detection-kinds/{code}"): api(
        ADMIN, send("PATCH", "/api/v1/detection-kinds/street_vending", {})
    ),
    ("GET", "/api/v1/cameras"): api(STAFF, get("/api/v1/cameras")),
    ("POST", "/api/v1/cameras"): api(
        ADMIN,
        send(
            "POST",
            "/api/v1/cameras",
            lambda w: {"code": "M-CAM-1", "name": "测试", "lon": w.lon, "lat": w.lat},
        ),
    ),
    ("PATCH", "/api/v1/cameras/{code}"): api(
        ADMIN, send("PATCH", "/api/v1/cameras/SM-JL-0002", {})
    ),
    ("GET", "/api/v1/sensors"): api(STAFF, get("/api/v1/sensors")),
    ("GET", "/api/v1/sensors/{code}"): api(STAFF, get("/api/v1/sensors/{w.sensor_code}")),
    ("POST", "/api/v1/sensors"): api(
        ADMIN,
        send(
            "POST",
            "/api/v1/sensors",
            lambda w: {
                "code": "M-WL-1",
                "kind": "water_level",
                "name": "测试",
                "lon": w.lon,
                "lat": w.lat,
            },
        ),
    ),
    ("PATCH", "/api/v1/sensors/{code}"): api(
        ADMIN, send("PATCH", "/api/v1/sensors/{w.sensor_code}", {})
    ),
    ("POST", "/api/v1/sensors/{code}/readings"): api(
        {"sensor"},
        send(
            "POST",
            "/api/v1/sensors/{w.sensor_code}/readings",
            {"value": 1.0, "unit": "cm", "ts": "2026-08-27T16:00:00+08:00"},
        ),
    ),
    ("POST", "/api/v1/device-keys"): api(
        ADMIN, send("POST", "/api/v1/device-keys", {"name": "测试", "kind": "camera"})
    ),
    ("GET", "/api/v1/device-keys"): api(ADMIN, get("/api/v1/device-keys")),
    ("DELETE", "/api/v1/device-keys/{key_id}"): api(
        ADMIN, send("DELETE", "/api/v1/device-keys/{w.key_id}")
    ),
    ("GET", "/api/v1/iot/stats"): api(STAFF, get("/api/v1/iot/stats")),
    # -- evaluation and analytics: the centre; a handler its own department's figures --------
    ("GET", "/api/v1/evaluation/settings"): api(READERS, get("/api/v1/evaluation/settings")),
    ("PUT", "/api/v1/evaluation/settings"): api(
        ADMIN, send("PUT", "/api/v1/evaluation/settings", {})
    ),
    ("GET", "/api/v1/evaluation/rates"): api(
        READERS | HANDLERS, get("/api/v1/evaluation/rates", **PERIOD)
    ),
    ("GET", "/api/v1/evaluation/report.xlsx"): api(
        READERS, get("/api/v1/evaluation/report.xlsx", **PERIOD)
    ),
    ("GET", "/api/v1/evaluation/{kind}"): api(
        READERS, get("/api/v1/evaluation/inspectors", **PERIOD)
    ),
    ("GET", "/api/v1/analytics/heatmap"): api(
        READERS | HANDLERS, get("/api/v1/analytics/heatmap", **PERIOD)
    ),
    ("GET", "/api/v1/analytics/incidence"): api(
        READERS | HANDLERS, get("/api/v1/analytics/incidence", **PERIOD)
    ),
    ("GET", "/api/v1/analytics/stages"): api(
        READERS | HANDLERS, get("/api/v1/analytics/stages", **PERIOD)
    ),
    ("GET", "/api/v1/analytics/trends"): api(
        READERS | HANDLERS, get("/api/v1/analytics/trends", **PERIOD)
    ),
    ("GET", "/api/v1/analytics/cases.csv"): api(
        READERS | HANDLERS, get("/api/v1/analytics/cases.csv", **PERIOD)
    ),
    # -- the console's pages (session cookie) ------------------------------------------------
    ("GET", "/"): page(EVERYONE, get("/"), any_answer=True),
    ("GET", "/login"): page(EVERYONE, get("/login")),
    ("POST", "/login"): page(
        EVERYONE, form("/login", {"username": "", "password": ""}), any_answer=True
    ),
    ("POST", "/logout"): page(EVERYONE, form("/logout"), any_answer=True),
    ("GET", "/web/static/{path:path}"): page(EVERYONE, get("/web/static/css/app.css")),
    ("GET", "/web/media/{media_id}"): page(SEES_CASE, get("/web/media/{w.media_id}")),
    ("GET", "/favicon.ico"): page(EVERYONE, get("/favicon.ico")),
    ("GET", "/desk/accept"): page(OPERATORS, get("/desk/accept")),
    ("GET", "/desk/accept/new"): page(OPERATORS, get("/desk/accept/new")),
    ("POST", "/desk/accept/suggest"): page(
        OPERATORS, form("/desk/accept/suggest", {"description": "垃圾桶满了"})
    ),
    ("GET", "/learning"): page(ADMIN | {"shiftlead", "leader", "dispatcher"}, get("/learning")),
    ("POST", "/desk/accept/new"): page(OPERATORS, form("/desk/accept/new")),
    ("POST", "/desk/accept/consult"): page(OPERATORS, form("/desk/accept/consult")),
    ("GET", "/desk/calls"): page(OPERATORS | {"leader"}, get("/desk/calls")),
    ("GET", "/desk/dispatch"): page(DISPATCHERS, get("/desk/dispatch")),
    ("GET", "/desk/handle"): page(HANDLERS | ADMIN, get("/desk/handle")),
    ("GET", "/case/{case_id}"): page(SEES_CASE, get("/case/{w.case_id}")),
    # Enforcement pages: the staff of enforcement (of the matrix's callers: admin, leader).
    ("GET", "/enforcement/{case_id}"): page(
        {"admin", "leader"}, get("/enforcement/999999"), found=False
    ),
    ("GET", "/m/officer"): page({"admin"}, get("/m/officer")),
    ("POST", "/m/officer/onsite"): page(
        {"admin"}, form("/m/officer/onsite", {"violation_code": ""}), found=False
    ),
    ("GET", "/m/officer/documents/{document_id}.pdf"): page(
        {"admin"}, get("/m/officer/documents/999999.pdf"), found=False
    ),
    ("GET", "/penalties"): page(EVERYONE, get("/penalties")),
    ("POST", "/case/{case_id}/act/{action}"): page(
        {"admin", "dispatcher", "shiftlead", "leader"},
        form("/case/{w.case_id}/act/urge", lambda w: {"version": str(w.version)}),
    ),
    ("GET", "/m/inspector"): page(INSPECTORS | ADMIN, get("/m/inspector")),
    ("POST", "/m/inspector/report"): page(INSPECTORS | ADMIN, form("/m/inspector/report")),
    ("GET", "/h5"): page(EVERYONE, get("/h5")),
    ("GET", "/h5/report"): page(EVERYONE, get("/h5/report")),
    ("POST", "/h5/report"): page(EVERYONE, form("/h5/report")),
    ("GET", "/h5/track"): page(EVERYONE, get("/h5/track", ticket="")),
    ("POST", "/h5/rate"): page(EVERYONE, form("/h5/rate"), found=False),
    ("GET", "/screen"): page(CENTRE, get("/screen")),
    ("GET", "/screen/data"): page(CENTRE, get("/screen/data")),
    ("GET", "/screen/fleet/stream"): page(CENTRE, get("/screen/fleet/stream", once="true")),
    ("GET", "/screen/fleet/track"): page(
        CENTRE, get("/screen/fleet/track", subject="vehicle", id=1)
    ),
    ("POST", "/m/inspector/duty"): page(
        INSPECTORS, send("POST", "/m/inspector/duty", {"status": "on"})
    ),
    ("POST", "/m/inspector/positions"): page(
        INSPECTORS,
        send(
            "POST",
            "/m/inspector/positions",
            lambda w: {
                "positions": [{"lon": w.lon, "lat": w.lat, "at": "2026-08-27T16:00:00+08:00"}]
            },
        ),
    ),
    ("GET", "/web/layers/regions/{level}.geojson"): page(
        EVERYONE, get("/web/layers/regions/district.geojson")
    ),
    ("GET", "/web/layers/unit_grids.geojson"): page(
        CENTRE | INSPECTORS | HANDLERS, get("/web/layers/unit_grids.geojson")
    ),
    ("GET", "/evaluation"): page(READERS | HANDLERS, get("/evaluation")),
    # The workbook is the centre's, as /api/v1/evaluation/report.xlsx is.
    ("GET", "/evaluation/report.xlsx"): page(READERS, get("/evaluation/report.xlsx", **PERIOD)),
    ("GET", "/admin"): page(ADMIN, get("/admin")),
    ("GET", "/admin/classes"): page(ADMIN, get("/admin/classes")),
    ("GET", "/admin/classes/{code}"): page(ADMIN, get("/admin/classes/06010")),
    ("POST", "/admin/classes/{code}"): page(ADMIN, form("/admin/classes/06010")),
    ("GET", "/admin/calendar"): page(ADMIN, get("/admin/calendar")),
    ("POST", "/admin/calendar"): page(ADMIN, form("/admin/calendar")),
    ("GET", "/admin/places"): page(ADMIN, get("/admin/places")),
    ("POST", "/admin/places"): page(ADMIN, form("/admin/places")),
}
# The administrator's register pages: every one of them for the administrator only.
for _path, _methods, _real in (
    ("/admin/departments", ("GET", "POST"), None),
    ("/admin/departments/{department_id}", ("GET", "POST"), "/admin/departments/{w.department_id}"),
    ("/admin/users", ("GET", "POST"), None),
    ("/admin/users/{user_id}", ("GET", "POST"), "/admin/users/{w.inspector_id}"),
    ("/admin/users/{user_id}/active", ("POST",), "/admin/users/{w.inspector_id}/active"),
    ("/admin/users/{user_id}/password", ("POST",), "/admin/users/{w.inspector_id}/password"),
    ("/admin/rules", ("GET", "POST"), None),
    ("/admin/rules/{rule_id}", ("GET", "POST"), "/admin/rules/{w.rule_id}"),
    ("/admin/rules/{rule_id}/delete", ("POST",), "/admin/rules/{w.rule_id}/delete"),
    ("/admin/partners", ("GET", "POST"), None),
    ("/admin/partners/{partner_id}", ("GET", "POST"), "/admin/partners/{w.partner_id}"),
    ("/admin/partners/{partner_id}/key", ("POST",), "/admin/partners/{w.partner_id}/key"),
    (
        "/admin/partners/{partner_id}/key/revoke",
        ("POST",),
        "/admin/partners/{w.partner_id}/key/revoke",
    ),
    ("/admin/cameras", ("GET", "POST"), None),
    ("/admin/cameras/{code}", ("GET", "POST"), "/admin/cameras/SM-JL-0002"),
    ("/admin/sensors", ("GET", "POST"), None),
    ("/admin/sensors/{code}", ("GET", "POST"), "/admin/sensors/{w.sensor_code}"),
    ("/admin/device-keys", ("GET", "POST"), None),
    ("/admin/device-keys/{key_id}/revoke", ("POST",), "/admin/device-keys/{w.key_id}/revoke"),
    ("/admin/documents", ("GET",), None),
    ("/admin/documents/{code}", ("GET", "POST"), "/admin/documents/bulletin"),
):
    for _method in _methods:
        _target = _real or _path
        EXPECTED[(_method, _path)] = page(
            ADMIN, get(_target) if _method == "GET" else form(_target)
        )

# Notifications (issue 13): one's own inbox, stream and preferences for every member of
# staff; rules, templates, webhooks and the SMS log for the administrator.
_RULE = {
    "event": "dispatch",
    "recipient": "department",
    "channels": ["inbox"],
    "template": "case_assigned",
}
EXPECTED.update(
    {
        ("GET", "/api/v1/me/notifications"): api(STAFF, get("/api/v1/me/notifications")),
        ("POST", "/api/v1/me/notifications/read-all"): api(
            STAFF, send("POST", "/api/v1/me/notifications/read-all")
        ),
        ("POST", "/api/v1/me/notifications/{notification_id}/read"): api(
            STAFF, send("POST", "/api/v1/me/notifications/999999/read"), found=False
        ),
        ("GET", "/api/v1/me/notifications/stream"): api(
            STAFF, get("/api/v1/me/notifications/stream", max_seconds=0)
        ),
        ("GET", "/api/v1/me/notification-preferences"): api(
            STAFF, get("/api/v1/me/notification-preferences")
        ),
        ("PUT", "/api/v1/me/notification-preferences"): api(
            STAFF, send("PUT", "/api/v1/me/notification-preferences", {"muted": []})
        ),
        ("GET", "/api/v1/notification-rules"): api(ADMIN, get("/api/v1/notification-rules")),
        ("POST", "/api/v1/notification-rules"): api(
            ADMIN, send("POST", "/api/v1/notification-rules", _RULE)
        ),
        ("PUT", "/api/v1/notification-rules/{rule_id}"): api(
            ADMIN, send("PUT", "/api/v1/notification-rules/999999", _RULE), found=False
        ),
        ("DELETE", "/api/v1/notification-rules/{rule_id}"): api(
            ADMIN, send("DELETE", "/api/v1/notification-rules/999999"), found=False
        ),
        ("GET", "/api/v1/notification-templates"): api(
            ADMIN, get("/api/v1/notification-templates")
        ),
        ("PUT", "/api/v1/notification-templates/{code}"): api(
            ADMIN,
            send(
                "PUT", "/api/v1/notification-templates/case_assigned", {"title": "t", "body": "b"}
            ),
        ),
        ("PUT", "/api/v1/departments/{department_id}/webhook"): api(
            ADMIN, send("PUT", "/api/v1/departments/{w.department_id}/webhook", {})
        ),
        ("GET", "/api/v1/notifications/sms-log"): api(ADMIN, get("/api/v1/notifications/sms-log")),
        ("GET", "/inbox"): page(STAFF, get("/inbox")),
        ("POST", "/inbox/read-all"): page(STAFF, form("/inbox/read-all")),
        ("POST", "/inbox/{notification_id}/read"): page(
            STAFF, form("/inbox/999999/read"), found=False
        ),
        ("POST", "/inbox/{notification_id}/open"): page(
            STAFF, form("/inbox/999999/open"), found=False
        ),
        ("GET", "/inbox/preferences"): page(STAFF, get("/inbox/preferences")),
        ("POST", "/inbox/preferences"): page(STAFF, form("/inbox/preferences")),
        ("GET", "/admin/notifications"): page(ADMIN, get("/admin/notifications")),
        ("POST", "/admin/notifications/rules"): page(ADMIN, form("/admin/notifications/rules")),
        ("POST", "/admin/notifications/rules/{rule_id}/delete"): page(
            ADMIN, form("/admin/notifications/rules/999999/delete"), found=False
        ),
        ("POST", "/admin/notifications/templates/{code}"): page(
            ADMIN, form("/admin/notifications/templates/case_assigned")
        ),
        ("POST", "/admin/notifications/webhooks/{department_id}"): page(
            ADMIN, form("/admin/notifications/webhooks/{w.department_id}")
        ),
        ("POST", "/admin/notifications/outbox/{message_id}/retry"): page(
            ADMIN, form("/admin/notifications/outbox/{w.message_id}/retry")
        ),
    }
)

# Routes that are not the application's: FastAPI's documentation.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def app_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        if route.path in DOCS:
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


# -- the world ----------------------------------------------------------------------------------
NOW = datetime(2026, 8, 27, 10, 0, tzinfo=TZ)


def _id(session: Session, model: Any, **where: Any) -> Any:
    query = select(model.id)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    found = session.scalar(query.limit(1))
    assert found is not None, (model, where)
    return found


@pytest.fixture
def world(city_session: Session, city_places, client: TestClient, auth) -> World:
    from cityloop.assets.models import Component
    from cityloop.outbox.service import enqueue

    lon, lat = point_in(city_places, YINGCUI)
    calendar = working_calendar(city_session)
    admin = Actor.of(city_session.scalar(select(User).where(User.username == "admin")))
    holder = _id(city_session, Department, code="D-350203")
    # The photo the case cites: served to whoever sees the case (and its uploader).
    media = client.post(
        "/api/v1/media",
        files={"file": ("p.jpg", jpeg_bytes(), "image/jpeg")},
        headers=auth("inspector"),
    )
    assert media.status_code == 201, media.text
    case, _ = receive(
        city_session,
        Report(
            source="public",
            class_code="06010",
            description="盈翠社区暴露垃圾",
            lon=lon,
            lat=lat,
            reporter_name="陈小明",
            reporter_phone="13812345678",
            photos=[media.json()["id"]],
        ),
        actor=admin,
        places=city_places,
        calendar=calendar,
        now=NOW,
    )
    transition(city_session, case.id, "file", admin, {}, now=NOW, calendar=calendar)
    transition(
        city_session,
        case.id,
        "dispatch",
        admin,
        {"department_id": holder},
        now=NOW,
        calendar=calendar,
    )
    message = enqueue(
        city_session, topic="matrix", target_url="http://127.0.0.1:9/none", payload={}, now=NOW
    )
    register_issuer(city_session, "matrix", "测试局", "测")
    document = issue_document(
        city_session,
        kind="bulletin",
        issuer_code="matrix",
        context={"content": "测试", "date": NOW.date()},
        subject_type="matrix",
        subject_id=1,
        now=NOW,
        actor_name="admin",
    )
    city_session.flush()
    city_session.commit()

    call = client.post(
        "/api/v1/hotline/calls",
        json={
            "line": "12345",
            "kind": "case",
            "caller_phone": "13800002222",
            "text": "有井盖丢了",
            "class_code": "01002",
        },
        headers=auth("operator"),
    )
    forwarded = client.post(
        "/api/v1/partners/reports",
        json={
            "ticket_id": "MATRIX-1",
            "class_code": "06010",
            "description": "暴露垃圾",
            "lon": lon,
            "lat": lat,
        },
        headers={"X-Api-Key": KEYS["partner"]},
    )
    assert media.status_code == 201 and call.status_code == 201, (media.text, call.text)
    assert forwarded.status_code == 201, forwarded.text
    assert call.json()["status"] == "waiting_location", call.json()
    users = {
        caller: city_session.scalar(select(User).where(User.username == name))
        for caller, name in USERS.items()
    }
    return World(
        case_id=case.id,
        ticket=case.ticket,
        phone="13812345678",
        name="陈小明",
        version=client.get(f"/api/v1/cases/{case.id}", headers=auth("admin")).json()["version"],
        call_id=call.json()["id"],
        media_id=media.json()["id"],
        document_id=document.id,
        inspector_id=_id(city_session, User, username="inspector"),
        department_id=holder,
        rule_id=city_session.scalar(select(ResponsibilityRule.id).limit(1)),
        partner_id=_id(city_session, Partner, code="12345-xiamen"),
        partner_ticket="MATRIX-1",
        message_id=message.id,
        key_id=_id(city_session, DeviceKey, kind="camera"),
        sensor_code=city_session.scalar(select(Sensor.code).order_by(Sensor.code).limit(1)),
        component_id=city_session.scalar(
            select(Component.identifier).order_by(Component.identifier).limit(1)
        ),
        lon=lon,
        lat=lat,
        users={caller: user.id for caller, user in users.items()},
        tokens={
            caller: issue_token(user, TEST_SETTINGS.secret_key, 60)
            for caller, user in users.items()
        },
    )


# -- asking as each caller ----------------------------------------------------------------------
CSRF = "matrix-" + secrets.token_hex(8)


def _credentials(world: World, caller: str, as_page: bool) -> tuple[dict[str, str], str]:
    """(headers, session cookie) for the caller: a bearer token for the API, a signed session
    for pages; keys travel in X-Api-Key. Everyone has a session with a CSRF token, as a
    browser that opened a page has."""
    user_id = world.users.get(caller)
    cookie = _serializer(TEST_SETTINGS.keyring()).dumps(
        {"u": user_id if as_page else None, "c": CSRF, "g": 0}
    )
    headers = {"X-CSRF-Token": CSRF}
    if caller in KEYS:
        headers["X-Api-Key"] = KEYS[caller]
    elif caller in world.tokens and not as_page:
        headers["Authorization"] = "Bearer " + world.tokens[caller]
    return headers, cookie


@pytest.fixture
def ask(client: TestClient, city_connection: Connection, world: World):
    def ask(rule: Rule, caller: str) -> Any:
        request = rule.build(world, caller)
        headers, cookie = _credentials(world, caller, rule.page)
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, cookie)
        savepoint = city_connection.begin_nested()
        try:
            return client.request(
                request.method,
                request.path,
                json=request.json if request.data is None and request.files is None else None,
                data=request.data,
                files=request.files,
                params=request.params,
                headers=headers,
                follow_redirects=False,
            )
        finally:
            if savepoint.is_active:
                savepoint.rollback()

    return ask


def _verdict(rule: Rule, response: Any, allowed: bool) -> str | None:
    """Why this answer is wrong for this caller (None when it is right)."""
    status = response.status_code
    if status >= 500:
        return "server error"
    if rule.any_answer:
        return None
    to_login = status in (302, 303, 307) and "/login" in response.headers.get("location", "")
    if allowed:
        if status in (401, 403) or to_login:
            return "refused an allowed caller"
        if rule.found and status == 404:
            return "an allowed caller did not find it"
        return None
    if status in (401, 403, 404) or (rule.page and to_login):
        return None
    return "let an unallowed caller in"


def test_every_route_is_in_the_table(client):
    routes = app_routes(client.app)
    missing = sorted(routes - set(EXPECTED))
    assert not missing, f"routes without an authorization rule in EXPECTED: {missing}"
    stale = sorted(set(EXPECTED) - routes)
    assert not stale, f"rules for routes the app no longer has: {stale}"


def test_every_route_answers_each_caller_as_its_rule_says(ask, client, backend):
    """About 2000 requests: on SQLite in CI. The rules live in Python, the case-scoped ones are
    checked on both databases by the tests below, and the slow variant runs this one on both."""
    if backend != "sqlite":
        pytest.skip("the whole matrix on PostgreSQL is the slow test below")
    _check_every_route(ask, client)


@pytest.mark.slow
def test_every_route_answers_each_caller_on_postgresql(ask, client, backend):
    if backend != "postgresql":
        pytest.skip("SQLite's run is the one above")
    _check_every_route(ask, client)


def _check_every_route(ask: Callable[[Rule, str], Any], client: TestClient) -> None:
    wrong = []
    for key in sorted(app_routes(client.app)):
        rule = EXPECTED.get(key)
        if rule is None:
            continue  # reported by test_every_route_is_in_the_table
        for caller in PAGE_CALLERS if rule.page else CALLERS:
            twin = TWINS.get(caller)
            if twin is not None and (caller in rule.allowed) == (twin in rule.allowed):
                continue  # the same role, and this route treats both alike: asked as the twin
            response = ask(rule, caller)
            problem = _verdict(rule, response, caller in rule.allowed)
            if problem is not None:
                wrong.append(
                    f"{key[0]} {key[1]} as {caller}: {response.status_code} {problem}: "
                    f"{response.text[:160]!r}"
                )
    assert not wrong, "\n".join(wrong)


# -- every action of the transition table --------------------------------------------------------
ROLE_OF = {caller: caller.split("_")[0] for caller in USERS}
# Scope of the callers on the world's case (dispatched to handler_a's department, in the grid
# of `inspector`): the others cannot see the case at all.
UNSEEN = {"handler_b", "inspector_b"}


def test_every_action_follows_the_table(ask, world):
    wrong = []
    for row in TRANSITIONS:
        rule = api(EVERYONE, send("POST", f"/api/v1/cases/{{w.case_id}}/actions/{row.action}"))
        for caller in CALLERS:
            response = ask(rule, caller)
            status = response.status_code
            role = ROLE_OF.get(caller)
            if role is None:
                ok = status == 401
            elif caller in UNSEEN:
                ok = status == 404
            elif role == "admin" or role in row.roles:
                # Allowed by role: refused now only by state (409) or payload (422), or done.
                ok = status in (200, 409, 422)
            else:
                ok = status == 403 and "may not" in response.json()["detail"]
            if not ok:
                wrong.append(f"{row.action} as {caller}: {status} {response.text[:160]!r}")
    assert not wrong, "\n".join(wrong)


def test_department_b_can_neither_read_nor_act_on_department_as_case(ask, world):
    """R-DIS-4: a department sees the cases it (or a unit below it) holds, nothing else."""
    b = "handler_b"
    for path in (
        "/api/v1/cases/{w.case_id}",
        "/api/v1/cases/{w.case_id}/actions",
    ):
        assert ask(api(EVERYONE, get(path)), b).status_code == 404
    for action in ("feedback", "return", "request_postpone", "submit_result", "pass_down"):
        refused = ask(
            api(
                EVERYONE,
                send(
                    "POST",
                    f"/api/v1/cases/{{w.case_id}}/actions/{action}",
                    {"note": "x", "reason": "x"},
                ),
            ),
            b,
        )
        assert refused.status_code == 404, (action, refused.text)
    listed = ask(api(EVERYONE, get("/api/v1/cases")), b).json()
    assert world.case_id not in [c["id"] for c in listed["items"]]
    page_view = ask(page(EVERYONE, get("/case/{w.case_id}")), b)
    assert page_view.status_code == 404
    # A case id that exists answers the same as one that does not: no existence leaks.
    ghost = ask(api(EVERYONE, get("/api/v1/cases/987654321")), b)
    assert ghost.status_code == 404 and ghost.json()["detail"].startswith("case ")
    # Department A sees it.
    assert ask(api(EVERYONE, get("/api/v1/cases/{w.case_id}")), "handler_a").status_code == 200


def test_the_public_never_sees_the_reporters_name_or_phone(ask, world):
    """R-IN-3: citizens follow their report; nobody else learns who sent it."""
    public = [
        api(EVERYONE, get("/api/v1/tickets/{w.ticket}")),
        api(EVERYONE, get("/open311/v2/requests/{w.ticket}.json")),
        api(EVERYONE, get("/open311/v2/requests/{w.ticket}.xml")),
        api(EVERYONE, get("/open311/v2/requests.json")),
        page(EVERYONE, get(f"/h5/track?ticket={world.ticket}")),
    ]
    for rule in public:
        response = ask(rule, ANON)
        assert response.status_code == 200, response.text
        assert world.ticket in response.text
        for secret in (world.phone, world.name, world.phone[-8:]):
            assert secret not in response.text, (rule.build(world, ANON).path, secret)


@pytest.mark.parametrize(
    ("caller", "sees"),
    [
        ("operator", True),
        ("shiftlead", True),
        ("admin", True),
        ("dispatcher", False),
        ("leader", False),
        ("handler_a", False),
        ("inspector", False),
    ],
)
def test_staff_outside_the_call_back_desks_see_the_reporter_masked(ask, world, caller, sees):
    body = ask(api(EVERYONE, get("/api/v1/cases/{w.case_id}")), caller).json()
    if sees:
        assert (body["reporter_phone"], body["reporter_name"]) == (world.phone, world.name)
    else:
        assert body["reporter_phone"] == "138****5678" and body["reporter_name"] == "陈**"
        text = json.dumps(body, ensure_ascii=False)
        assert world.phone not in text and world.name not in text
