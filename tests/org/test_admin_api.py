"""The administrator's JSON API over the organisation (the admin pages call the same service
functions): departments as a tree, users with their role, department and grids, and the
responsibility rules that route cases (R-GR-2, R-GR-3, R-DIS-1). Bad input names its field and
writes nothing; only an administrator may write."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.errors import ValidationFailed
from cityloop.org.models import Department, ResponsibilityRule, User
from cityloop.org.service import update_user

YINGCUI = "350203011003"
JIALIAN = "350203011"


def _dept(session: Session, code: str) -> int:
    found = session.scalar(select(Department.id).where(Department.code == code))
    assert found is not None
    return int(found)


def _token(client: TestClient, username: str, password: str) -> int:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    return response.status_code


def test_departments_are_created_and_moved_within_the_tree(
    client: TestClient, auth: Any, city_session: Session
) -> None:
    admin = auth("admin")
    jialian = _dept(city_session, "D-350203011")
    made = client.post(
        "/api/v1/departments",
        json={
            "code": "D-JL-SR",
            "name": "嘉莲街道市容所",
            "kind": "street_office",
            "parent_id": jialian,
            "region_code": JIALIAN,
            "phone": "0592-5550000",
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    parent = made.json()["id"]
    child = client.post(
        "/api/v1/departments",
        json={
            "code": "D-JL-SR-1",
            "name": "市容所一组",
            "kind": "street_office",
            "parent_id": parent,
        },
        headers=admin,
    ).json()["id"]

    for body, status, field in (
        ({"code": "D-JL-SR", "name": "重复", "kind": "street_office"}, 409, "code"),
        ({"code": "D-X1", "name": "x", "kind": "ministry"}, 422, "kind"),
        ({"code": "D X", "name": "x", "kind": "community"}, 422, "code"),
        ({"code": "D-X2", "name": " ", "kind": "community"}, 422, "name"),
        ({"code": "D-X3", "name": "x", "kind": "community", "parent_id": 999999}, 422, "parent_id"),
        (
            {"code": "D-X4", "name": "x", "kind": "community", "region_code": "99"},
            422,
            "region_code",
        ),
        ({"code": "D-X5", "name": "x", "kind": "community", "phone": "call me"}, 422, "phone"),
    ):
        response = client.post("/api/v1/departments", json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
        assert response.json()["field"] == field, body

    # Never under itself or its own sub-unit.
    loop = client.patch(f"/api/v1/departments/{parent}", json={"parent_id": child}, headers=admin)
    assert loop.status_code == 422 and loop.json()["field"] == "parent_id"
    moved = client.patch(
        f"/api/v1/departments/{child}",
        json={"parent_id": jialian, "name": "市容所一组（独立）"},
        headers=admin,
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["parent_id"], moved.json()["name"]) == (jialian, "市容所一组（独立）")
    top = client.patch(f"/api/v1/departments/{child}", json={"parent_id": None}, headers=admin)
    assert top.json()["parent_id"] is None

    assert (
        client.post(
            "/api/v1/departments",
            json={"code": "D-Y", "name": "y", "kind": "community"},
            headers=auth("dispatcher"),
        ).status_code
        == 403
    )
    assert city_session.scalar(select(Department).where(Department.code.like("D-X%"))) is None


def test_users_are_created_changed_disabled_and_given_a_new_password(
    client: TestClient, auth: Any, city_session: Session
) -> None:
    admin = auth("admin")
    body = {
        "username": "li.ming",
        "display_name": "网格员 李明",
        "role": "inspector",
        "password": "grid-2026!",
        "grid_codes": [YINGCUI],
        "phone": "13800000001",
    }
    for changes, field in (
        ({"grid_codes": []}, "grid_codes"),
        ({"grid_codes": ["350203011999"]}, "grid_codes"),
        ({"role": "mayor"}, "role"),
        ({"password": "short"}, "password"),
        ({"username": "a b"}, "username"),
        ({"role": "handler", "grid_codes": []}, "department_id"),
    ):
        response = client.post("/api/v1/users", json={**body, **changes}, headers=admin)
        assert response.status_code == 422, (changes, response.text)
        assert response.json()["field"] == field, changes
    made = client.post("/api/v1/users", json=body, headers=admin)
    assert made.status_code == 201, made.text
    user_id = made.json()["id"]
    assert made.json()["grid_codes"] == [YINGCUI]
    assert _token(client, "li.ming", "grid-2026!") == 200

    listed = client.get("/api/v1/users?role=inspector&q=li.m", headers=admin).json()
    assert [u["username"] for u in listed] == ["li.ming"]

    wrong = client.patch(f"/api/v1/users/{user_id}", json={"role": "handler"}, headers=admin)
    assert wrong.status_code == 422 and wrong.json()["field"] == "department_id"
    handler = client.patch(
        f"/api/v1/users/{user_id}",
        json={"role": "handler", "department_id": _dept(city_session, "D-350203011")},
        headers=admin,
    )
    assert handler.status_code == 200 and handler.json()["role"] == "handler"

    off = client.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["active"] is False
    assert _token(client, "li.ming", "grid-2026!") == 401
    client.patch(f"/api/v1/users/{user_id}", json={"active": True}, headers=admin)
    short = client.post(
        f"/api/v1/users/{user_id}/password", json={"password": "1234"}, headers=admin
    )
    assert short.status_code == 422 and short.json()["field"] == "password"
    client.post(f"/api/v1/users/{user_id}/password", json={"password": "new-pass-9"}, headers=admin)
    assert _token(client, "li.ming", "grid-2026!") == 401
    assert _token(client, "li.ming", "new-pass-9") == 200

    # An administrator cannot lock themselves out, and the last one stays one.
    (admin_id,) = city_session.scalars(select(User.id).where(User.role == "admin"))
    me = client.patch(f"/api/v1/users/{admin_id}", json={"active": False}, headers=admin)
    assert me.status_code == 422 and me.json()["field"] == "active"
    demoted = client.patch(f"/api/v1/users/{admin_id}", json={"role": "leader"}, headers=admin)
    assert demoted.status_code == 422 and demoted.json()["field"] == "role"
    with pytest.raises(ValidationFailed) as last:
        update_user(city_session, admin_id, {"active": False})
    assert last.value.field == "active"
    city_session.rollback()
    assert client.get("/api/v1/users", headers=auth("operator")).status_code == 403


def test_responsibility_rules_are_created_edited_and_deleted(
    client: TestClient, auth: Any, city_session: Session
) -> None:
    admin = auth("admin")
    water = _dept(city_session, "XM-SW")
    body = {
        "class_prefix": "06010",
        "region_prefix": YINGCUI,
        "department_id": water,
        "auto_dispatch": True,
        "note": "试点",
    }
    made = client.post("/api/v1/responsibility-rules", json=body, headers=admin)
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    for changes, status, field in (
        ({}, 409, "class_prefix"),  # the same class and region twice
        ({"class_prefix": "99"}, 422, "class_prefix"),
        ({"class_prefix": "0x"}, 422, "class_prefix"),
        ({"region_prefix": "350299"}, 422, "region_prefix"),
        ({"department_id": 999999}, 422, "department_id"),
    ):
        response = client.post(
            "/api/v1/responsibility-rules", json={**body, **changes}, headers=admin
        )
        assert response.status_code == status, (changes, response.text)
        assert response.json()["field"] == field, changes

    patched = client.patch(
        f"/api/v1/responsibility-rules/{rule_id}",
        json={"auto_dispatch": False, "region_prefix": JIALIAN},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["auto_dispatch"], patched.json()["region_prefix"]) == (False, JIALIAN)
    listed = client.get("/api/v1/responsibility-rules", headers=admin).json()
    assert any(r["id"] == rule_id for r in listed)

    assert (
        client.delete(
            f"/api/v1/responsibility-rules/{rule_id}", headers=auth("dispatcher")
        ).status_code
        == 403
    )
    assert (
        client.delete(f"/api/v1/responsibility-rules/{rule_id}", headers=admin).status_code == 204
    )
    assert city_session.get(ResponsibilityRule, rule_id) is None
    assert (
        client.delete(f"/api/v1/responsibility-rules/{rule_id}", headers=admin).status_code == 404
    )
