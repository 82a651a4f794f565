"""An administrator sees failed deliveries and retries them (R-IN-5: failures visible)."""

from __future__ import annotations

from datetime import datetime

from cityloop.outbox.models import OutboxMessage
from tests.conftest import TZ


def _failed(city_session) -> int:
    at = datetime(2026, 8, 27, 16, 5, tzinfo=TZ)
    message = OutboxMessage(
        topic="case.status",
        target_url="https://12345.example/hook",
        payload={"ticket": "260827ABCDEF", "state": "filed"},
        status="failed",
        created_at=at,
        attempts=8,
        next_attempt_at=at,
        failed_at=at,
        last_status_code=502,
        last_error="HTTP 502: Bad Gateway",
    )
    city_session.add(message)
    city_session.commit()
    return message.id


def test_failed_deliveries_are_listed_and_retried(client, auth, city_session):
    message_id = _failed(city_session)

    page = client.get("/api/v1/outbox", params={"status": "failed"}, headers=auth("admin"))
    assert page.status_code == 200, page.text
    assert page.json()["counts"]["failed"] == 1
    [item] = page.json()["items"]
    assert (item["id"], item["last_error"], item["attempts"]) == (
        message_id,
        "HTTP 502: Bad Gateway",
        8,
    )

    retried = client.post(f"/api/v1/outbox/{message_id}/retry", headers=auth("admin"))
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    again = client.post(f"/api/v1/outbox/{message_id}/retry", headers=auth("admin"))
    assert again.status_code == 409 and again.json()["field"] == "status"
    assert client.post("/api/v1/outbox/999999/retry", headers=auth("admin")).status_code == 404


def test_only_an_administrator_sees_the_outbox(client, auth):
    assert client.get("/api/v1/outbox", headers=auth("operator")).status_code == 403
    assert client.get("/api/v1/outbox").status_code == 401
    bad = client.get("/api/v1/outbox", params={"status": "lost"}, headers=auth("admin"))
    assert bad.status_code == 422 and bad.json()["field"] == "status"
