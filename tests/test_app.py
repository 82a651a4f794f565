"""The service's front door: health, OpenAPI docs, logging in."""

from __future__ import annotations


def test_health_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/reports",
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/actions",
        "/api/v1/cases/{case_id}/actions/{action}",
        "/api/v1/tickets/{ticket}",
        "/api/v1/auth/token",
    ):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200


def test_login_with_the_demo_password_and_not_without(client):
    ok = client.post(
        "/api/v1/auth/token", data={"username": "dispatcher", "password": "cityloop-demo"}
    )
    assert ok.status_code == 200
    token = ok.json()["access_token"]
    assert ok.json()["token_type"] == "bearer"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "dispatcher" and me["role_label"] == "派遣员"
    bad = client.post("/api/v1/auth/token", data={"username": "dispatcher", "password": "wrong"})
    assert bad.status_code == 401 and "wrong username or password" in bad.json()["detail"]
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer garbage"}).status_code == 401
