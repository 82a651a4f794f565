"""Helpers for the enforcement tests: the bureau's staff acting through the REST API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.enforcement.ids import credit_check_char, id_check_char
from cityloop.enforcement.models import Officer
from tests.cases.helpers import Desk


def id_number(body17: str = "35020319900101123") -> str:
    return body17 + id_check_char(body17)


def credit_code(body17: str = "91350203MA31XY7K0") -> str:
    return body17 + credit_check_char(body17)


def officer_ids(session: Session, *certs: str) -> list[int]:
    rows = session.scalars(select(Officer.id).where(Officer.cert_no.in_(certs))).all()
    assert len(rows) == len(certs)
    return list(rows)


class Bureau(Desk):
    """Desk for the enforcement API (uploads photos named in a payload, like Desk)."""

    def __init__(self, client: TestClient, auth: Callable[[str], dict[str, str]]) -> None:
        super().__init__(client, auth)

    def party(self, user: str = "officer", expect: int = 201, **body: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/enforcement/parties", json=body, headers=self.auth(user)
        )
        assert response.status_code == expect, response.text
        return dict(response.json())

    def open(self, user: str = "officer", expect: int = 201, **body: Any) -> dict[str, Any]:
        response = self.client.post("/api/v1/enforcement/cases", json=body, headers=self.auth(user))
        assert response.status_code == expect, response.text
        return dict(response.json())

    def step(
        self, user: str, case_id: int, action: str, expect: int = 200, **payload: Any
    ) -> dict[str, Any]:
        if isinstance(payload.get("photos"), list) and payload["photos"]:
            payload["photos"] = self._upload(user, payload["photos"])
        response = self.client.post(
            f"/api/v1/enforcement/cases/{case_id}/actions/{action}",
            json=payload,
            headers=self.auth(user),
        )
        assert response.status_code == expect, (
            f"{action} by {user}: {response.status_code} {response.text}"
        )
        return dict(response.json())

    def get(self, user: str, case_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/enforcement/cases/{case_id}", headers=self.auth(user))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def allowed(self, user: str, case_id: int) -> list[str]:
        response = self.client.get(
            f"/api/v1/enforcement/cases/{case_id}/actions", headers=self.auth(user)
        )
        assert response.status_code == 200, response.text
        return [a["action"] for a in response.json()]
