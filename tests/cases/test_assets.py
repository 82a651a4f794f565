"""The component registry (R-AC-6): a component's ID card, legacy codes, and a case about a
component is dispatched to its owner by default."""

from __future__ import annotations

from tests.cases.helpers import YINGCUI, Desk, department_id, point_in


def test_case_about_a_component_goes_to_its_owner(client, auth, city_session, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    water = department_id(city_session, "XM-SW")
    body = {"identifier": "350203010020999999", "lon": lon, "lat": lat}
    assert client.post("/api/v1/components", json=body, headers=auth("admin")).status_code == 422
    body = {
        "identifier": "35020301002099999",
        "lon": lon,
        "lat": lat,  # 污水井盖 01002
        "owner_department_id": water,
        "responsible_person": "周涛",
        "phone": "0592-1234567",
    }
    assert client.post("/api/v1/components", json=body, headers=auth("operator")).status_code == 403
    created = client.post("/api/v1/components", json=body, headers=auth("admin"))
    assert created.status_code == 201, created.text
    card = created.json()
    assert card["class_code"] == "01002" and card["name"] == "污水井盖"
    assert card["unit_grid"].startswith(YINGCUI)

    desk = Desk(client, auth)
    # An inspector's report about a registered component goes straight to its owner
    # (直接派遣): filed and dispatched by the system in the same request.
    created = desk.report(
        "inspector",
        source="inspector",
        class_code="01002",
        lon=lon,
        lat=lat,
        description="污水井盖破损",
        component_id=card["identifier"],
    )
    assert created["state"] == "dispatched"
    dispatched = desk.case("operator", created["id"])
    assert dispatched["department_id"] == water
    assert dispatched["component_id"] == "35020301002099999"
    steps = [
        (e["action"], e["actor"], e["payload"].get("automatic")) for e in dispatched["timeline"]
    ]
    assert steps == [
        ("report", "网格员 张伟 (嘉莲街道)", None),
        ("file", "系统", True),
        ("dispatch", "系统", True),
    ]


def test_auto_dispatch_follows_the_rules_and_trusts_only_inspectors(client, auth, city_places):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    lamp = desk.report(
        "inspector",
        source="inspector",
        class_code="01037",
        lon=lon,
        lat=lat,
        description="路灯不亮",
    )
    assert lamp["state"] == "dispatched"  # 路灯: the 市政 rule is marked auto_dispatch
    assert desk.case("operator", lamp["id"])["department"] == "厦门市市政设施管理中心"
    litter = desk.report(
        "inspector",
        source="inspector",
        class_code="06010",
        lon=lon,
        lat=lat,
        description="暴露垃圾",
    )
    assert litter["state"] == "pending_filing"  # events pass the desks
    citizen = desk.report(
        None, source="app", class_code="01037", lon=lon + 0.002, lat=lat, description="路灯不亮"
    )
    assert citizen["state"] == "reported"  # not verified yet: no shortcut


def test_legacy_sixteen_digit_identifier_is_mapped(client, auth, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    created = client.post(
        "/api/v1/components",
        json={"identifier": "3502030101900001", "lon": lon, "lat": lat},
        headers=auth("admin"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["identifier"] == "35020301001900001"  # 上水井盖 0101 → 供水井盖 01001
    assert created.json()["legacy_identifier"] == "3502030101900001"
    found = client.get("/api/v1/components/3502030101900001", headers=auth("operator"))
    assert found.json()["identifier"] == "35020301001900001"
    bad = client.post(
        "/api/v1/components",
        json={"identifier": "35020306010000001", "lon": lon, "lat": lat},
        headers=auth("admin"),
    )
    assert bad.status_code == 422 and "event class" in bad.json()["detail"]
    assert client.get("/api/v1/components/1", headers=auth("operator")).status_code == 404
