"""Open311 GeoReport v2 at /open311/v2/ (R-IN-1, R-IN-3, R-DX-1): every method of the spec in
XML and JSON, parsed here strictly as the spec describes them (xml.etree, bare JSON arrays),
errors as its error lists, and nothing private in what is shown."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from cityloop.cases.models import Case
from cityloop.taxonomy.models import ProblemClass
from tests.cases.helpers import Desk
from tests.conftest import TZ
from tests.open311.conftest import OPEN311_KEY

BASE = "/open311/v2"
REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]


def _xml(response: Any) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(response.content)
    for element in root.iter():  # plain elements: no namespaces, no attributes
        assert "}" not in element.tag and not element.attrib
    return root


def _json(response: Any) -> Any:
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def _post(client: Any, fmt: str = "json", **fields: Any) -> Any:
    return client.post(f"{BASE}/requests.{fmt}", data=fields)


def _new_request(client: Any, spot: tuple[float, float], **fields: Any) -> str:
    lat, long = spot
    body = {
        "api_key": OPEN311_KEY,
        "service_code": "01001",
        "lat": lat,
        "long": long,
        "description": "供水井盖缺失",
    } | fields
    response = _post(client, **body)
    assert response.status_code == 200, response.text
    return str(_json(response)[0]["service_request_id"])


def _cases(session: Any) -> int:
    return session.scalar(select(func.count()).select_from(Case))


def test_discovery_points_clients_at_this_endpoint(client):
    root = _xml(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    endpoint = root.find("endpoints/endpoint")
    assert endpoint is not None
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint.findtext("url") == "http://testserver/open311/v2"
    assert [f.text for f in endpoint.findall("formats/format")] == ["text/xml", "application/json"]
    document = _json(client.get(f"{BASE}/discovery.json"))
    assert document["endpoints"][0]["formats"] == ["text/xml", "application/json"]
    datetime.fromisoformat(document["changeset"])


def test_the_services_are_the_taxonomys_classes(client, city_session):
    minors = city_session.scalar(
        select(func.count())
        .select_from(ProblemClass)
        .where(ProblemClass.level == "minor", ProblemClass.active)
    )
    root = _xml(client.get(f"{BASE}/services.xml"))
    services = root.findall("service")
    assert root.tag == "services" and len(services) == minors
    manhole = next(s for s in services if s.findtext("service_code") == "01001")
    assert [child.tag for child in manhole] == [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ]
    assert manhole.findtext("service_name") == "供水井盖异常"
    assert manhole.findtext("group") == "市政公用设施"
    assert (manhole.findtext("metadata"), manhole.findtext("type")) == ("false", "realtime")

    listed = _json(client.get(f"{BASE}/services.json"))
    assert isinstance(listed, list) and len(listed) == minors
    assert next(s for s in listed if s["service_code"] == "01001")["metadata"] is False
    assert _json(client.get(f"{BASE}/services.json?jurisdiction_id=350200")) == listed
    assert _json(client.get(f"{BASE}/services.json?jurisdiction_id=")) == listed


def test_a_service_definition_and_the_errors_for_unknown_ones(client):
    root = _xml(client.get(f"{BASE}/services/01001.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "01001"
    attributes = root.find("attributes")
    assert attributes is not None and len(attributes) == 0
    assert _json(client.get(f"{BASE}/services/01001.json")) == {
        "service_code": "01001",
        "attributes": [],
    }
    for code in ("99999", "01"):  # unknown, and a major class nobody can report under
        missing = client.get(f"{BASE}/services/{code}.xml")
        assert missing.status_code == 404
        error = _xml(missing).find("error")
        assert error is not None and error.findtext("code") == "404"
        assert "service_code" in (error.findtext("description") or "")


def test_a_citizen_app_posts_a_request_and_follows_it(client, city_session, spot, partner_keys):
    lat, long = spot
    form = {
        "api_key": OPEN311_KEY,
        "service_code": "01001",
        "lat": lat,
        "long": long,
        "address_string": "嘉莲街道盈翠社区明发商业广场北侧",
        "email": "lin@example.cn",
        "device_id": "tt222111",
        "account_id": "acct-77",
        "first_name": "晓",
        "last_name": "林",
        "phone": "13912345678",
        "description": "供水井盖缺失，夜间很危险。联系电话13912345678",
        "media_url": "https://photos.example.cn/manhole-1.jpg",
    }
    posted = client.post(f"{BASE}/requests.json", data=form)
    assert posted.status_code == 200, posted.text
    [answer] = _json(posted)
    request_id = answer["service_request_id"]
    assert answer["account_id"] == "acct-77" and request_id in answer["service_notice"]
    case = city_session.scalar(select(Case).where(Case.ticket == request_id))
    assert case is not None
    assert (case.source, case.state, case.reporter_name, case.reporter_phone) == (
        "open311",
        "reported",
        "林 晓",
        "13912345678",
    )

    [shown] = _json(client.get(f"{BASE}/requests/{request_id}.json"))
    assert list(shown) == REQUEST_FIELDS
    assert (shown["status"], shown["service_code"], shown["service_name"]) == (
        "open",
        "01001",
        "供水井盖异常",
    )
    assert (shown["lat"], shown["long"]) == (pytest.approx(lat), pytest.approx(long))
    assert shown["media_url"] == "https://photos.example.cn/manhole-1.jpg"
    assert shown["address"] == "嘉莲街道盈翠社区明发商业广场北侧"
    assert datetime.fromisoformat(shown["requested_datetime"]) == datetime(
        2026, 8, 27, 16, 5, tzinfo=TZ
    )
    assert shown["requested_datetime"].endswith("+08:00")

    root = _xml(client.get(f"{BASE}/requests/{request_id}.xml"))
    request = root.find("request")
    assert root.tag == "service_requests" and request is not None
    assert [child.tag for child in request] == REQUEST_FIELDS
    assert request.findtext("expected_datetime") == ""  # empty optional fields are empty
    # Nothing identifies the reporter, whatever the format.
    for fmt in ("json", "xml"):
        text = client.get(f"{BASE}/requests/{request_id}.{fmt}").text
        for private in ("13912345678", "林 晓", "lin@example.cn", "acct-77", "tt222111"):
            assert private not in text
        assert "139****" in text


def test_the_xml_answer_to_a_post_and_a_key_in_the_query_string(client, spot, partner_keys):
    lat, long = spot
    response = client.post(
        f"{BASE}/requests.xml?api_key={OPEN311_KEY}&jurisdiction_id=350200",
        data={"service_code": "03001", "lat": lat, "long": long},
    )
    assert response.status_code == 200, response.text
    request = _xml(response).find("request")
    assert request is not None
    request_id = request.findtext("service_request_id")
    assert request_id and request.find("token") is None  # realtime: the id, never a token
    # No description given: the case still says what it is about.
    [shown] = _json(client.get(f"{BASE}/requests/{request_id}.json"))
    assert shown["description"] == shown["service_name"]


@pytest.mark.parametrize(
    ("changes", "status", "names"),
    [
        ({"api_key": None}, 403, "api_key"),
        ({"api_key": "guess-guess-guess"}, 403, "api_key"),
        ({"service_code": None}, 400, "service_code"),
        ({"service_code": "99999"}, 404, "service_code"),
        ({"service_code": "03"}, 404, "service_code"),
        ({"lat": None, "long": None}, 400, "lat"),
        ({"lat": None, "long": None, "address_string": "厦禾路1108号"}, 400, "address_string"),
        ({"long": None}, 400, "long"),
        ({"lat": "north"}, 400, "lat"),
        ({"long": 200}, 400, "long"),
        ({"lat": 39.9, "long": 116.4}, 400, "long: the point"),
        ({"description": "长" * 4001}, 400, "description"),
        ({"phone": "1" * 31}, 400, "phone"),
        ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
        ({"jurisdiction_id": "nyc.gov"}, 404, "jurisdiction_id"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_posts_get_the_specs_errors_and_write_nothing(
    client, city_session, spot, partner_keys, changes, status, names, fmt
):
    lat, long = spot
    form = {"api_key": OPEN311_KEY, "service_code": "01001", "lat": lat, "long": long} | changes
    before = _cases(city_session)
    response = _post(client, fmt, **{k: v for k, v in form.items() if v is not None})
    assert response.status_code == status, response.text
    if fmt == "json":
        [error] = _json(response)
        code, description = error["code"], error["description"]
    else:
        root = _xml(response)
        assert root.tag == "errors"
        code, description = (
            int(root.findtext("error/code") or 0),
            root.findtext("error/description"),
        )
    assert code == status and names in (description or "")
    assert _cases(city_session) == before


def test_an_oversized_post_is_refused_before_it_is_read(client, city_session, partner_keys):
    before = _cases(city_session)
    response = client.post(
        f"{BASE}/requests.xml",
        content=b"api_key=" + b"x" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert _xml(response).findtext("error/code") == "413"
    assert _cases(city_session) == before


def test_a_retry_with_the_same_idempotency_key_is_the_same_request(client, spot, partner_keys):
    lat, long = spot
    form = {"api_key": OPEN311_KEY, "service_code": "01001", "lat": lat, "long": long}
    headers = {"Idempotency-Key": "app-7f3a-0001"}
    first = client.post(f"{BASE}/requests.json", data=form, headers=headers)
    second = client.post(f"{BASE}/requests.json", data=form, headers=headers)
    assert first.json()[0]["service_request_id"] == second.json()[0]["service_request_id"]
    # Another request under the same key is refused, not answered with the first (issue 23).
    other = client.post(
        f"{BASE}/requests.json", data={**form, "service_code": "01002"}, headers=headers
    )
    assert other.status_code == 400, other.text
    assert "Idempotency-Key" in other.json()[0]["description"]


def test_requests_are_found_by_id_service_status_and_dates(
    client, auth, clock, city_places, partner_keys
):
    lat, long = 24.4778, 118.1320  # 湖里区 (江头街道): not near the other requests
    old_now = clock.now()
    clock.set(old_now - timedelta(days=100))
    ancient = _new_request(client, (lat, long), service_code="03001")
    clock.set(old_now - timedelta(days=10))
    bin_overflow = _new_request(client, (lat, long), service_code="03001")
    clock.set(old_now - timedelta(days=1))
    parking = _new_request(client, (lat + 0.002, long), service_code="02014")
    clock.set(old_now)
    manhole = _new_request(client, (lat - 0.002, long))
    rejected = _new_request(client, (lat, long + 0.002), service_code="01007")
    case_id = client.get(
        "/api/v1/cases", params={"ticket": rejected}, headers=auth("admin")
    ).json()["items"][0]["id"]
    Desk(client, auth).act("operator", case_id, "reject", reason="非城市管理事项")

    def ids(**params: Any) -> list[str]:
        response = client.get(f"{BASE}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in _json(response)]

    # Default: the last 90 days, newest first.
    assert ids() == [rejected, manhole, parking, bin_overflow]
    assert ids(status="closed") == [rejected]
    assert ids(status="open") == [manhole, parking, bin_overflow]
    assert ids(status="open,closed") == ids()
    assert ids(service_code="03001,02014") == [parking, bin_overflow]
    assert ids(start_date=(old_now - timedelta(days=2)).isoformat()) == [rejected, manhole, parking]
    window = {
        "start_date": (old_now - timedelta(days=105)).isoformat(),
        "end_date": (old_now - timedelta(days=20)).isoformat(),
    }
    assert ids(**window) == [ancient]
    # service_request_id overrides every other filter.
    assert ids(service_request_id=f"{ancient},{manhole}", status="closed") == [manhole, ancient]
    [closed] = _json(client.get(f"{BASE}/requests/{rejected}.json"))
    # The citizen learns why (issue 13): the centre's reason follows the state.
    assert (closed["status"], closed["status_notes"]) == ("closed", "不予受理：非城市管理事项")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        (
            {"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-08-01T00:00:00+08:00"},
            "90 days",
        ),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"end_date": "2026-02-30T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-08-20T00:00:00Z", "end_date": "2026-08-10T00:00:00Z"}, "end_date"),
        ({"status": "pending"}, "status"),
        ({"jurisdiction_id": "sfgov.org"}, "jurisdiction_id"),
    ],
)
def test_bad_queries_get_a_400_or_404_naming_the_parameter(client, params, name):
    response = client.get(f"{BASE}/requests.xml", params=params)
    assert response.status_code in (400, 404)
    assert name in (_xml(response).findtext("error/description") or "")


def test_a_duplicate_shows_closed_with_the_request_that_carries_it(client, spot, partner_keys):
    first = _new_request(client, spot)
    second = _new_request(client, spot)  # same place, same class: merged into the first
    [shown] = _json(client.get(f"{BASE}/requests/{second}.json"))
    assert shown["status"] == "closed" and first in shown["status_notes"]


def test_tokens_unknown_requests_and_unknown_paths(client, spot, partner_keys):
    request_id = _new_request(client, spot)
    [token] = _json(client.get(f"{BASE}/tokens/{request_id}.json"))
    assert token == {"service_request_id": request_id, "token": request_id}
    assert client.get(f"{BASE}/tokens/NOPE.json").status_code == 404
    missing = client.get(f"{BASE}/requests/260101AAAAAA.xml")
    assert missing.status_code == 404 and _xml(missing).findtext("error/code") == "404"
    for path in (f"{BASE}/services.html", f"{BASE}/nothing.json", f"{BASE}/requests"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.text.lstrip().startswith(("[", "<?xml"))
