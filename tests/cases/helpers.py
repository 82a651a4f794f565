"""Helpers for the loop tests: a thin client over the REST API, as a command centre uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.states import BY_ACTION
from cityloop.org.models import Department
from cityloop.places.demo_xiamen import sample_point
from cityloop.places.service import PlaceIndex

YINGCUI = "350203011003"  # 盈翠社区, 嘉莲街道, 思明区 (seed 002)
WUCUN_STREET = "350203008"  # 梧村街道 (seed 000: 厦禾路1108号)


class Desk:
    """Acts through the API as the demo staff do. Photos named in a payload are uploaded as
    real JPEGs first (POST /api/v1/media) and sent as their media ids; `uploaded` maps each
    name to its id."""

    def __init__(self, client: TestClient, auth: Callable[[str], dict[str, str]]) -> None:
        self.client = client
        self.auth = auth
        self.uploaded: dict[str, str] = {}

    def _upload(self, user: str, names: list[str]) -> list[str]:
        from tests.conftest import jpeg_bytes

        ids = []
        for name in names:
            if name not in self.uploaded:
                response = self.client.post(
                    "/api/v1/media",
                    files={"file": (name, jpeg_bytes(), "image/jpeg")},
                    headers=self.auth(user),
                )
                assert response.status_code == 201, response.text
                self.uploaded[name] = response.json()["id"]
            ids.append(self.uploaded[name])
        return ids

    def report(self, user: str | None, **body: Any) -> dict[str, Any]:
        headers = self.auth(user) if user else {}
        response = self.client.post("/api/v1/reports", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def act(
        self, user: str, case_id: int, action: str, expect: int = 200, **payload: Any
    ) -> dict[str, Any]:
        if isinstance(payload.get("photos"), list) and payload["photos"]:
            payload["photos"] = self._upload(user, payload["photos"])
        if BY_ACTION[action].repeats_unnoticed and "version" not in payload:
            # As a desk does: the version of the case it shows (the API wants it, issue 23).
            payload["version"] = self.case(user, case_id)["version"]
        response = self.client.post(
            f"/api/v1/cases/{case_id}/actions/{action}", json=payload, headers=self.auth(user)
        )
        assert response.status_code == expect, (
            f"{action} by {user}: {response.status_code} {response.text}"
        )
        return dict(response.json())

    def case(self, user: str, case_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/cases/{case_id}", headers=self.auth(user))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def actions(self, user: str, case_id: int) -> list[str]:
        response = self.client.get(f"/api/v1/cases/{case_id}/actions", headers=self.auth(user))
        assert response.status_code == 200, response.text
        return [a["action"] for a in response.json()]


def department_id(session: Session, code: str) -> int:
    found = session.scalar(select(Department.id).where(Department.code == code))
    assert found is not None, code
    return found


def point_in(places: PlaceIndex, community_code: str) -> tuple[float, float]:
    return sample_point(places, community_code)


def first_community_of(places: PlaceIndex, street_code: str) -> str:
    communities = sorted(
        r.code for r in places.regions("community") if r.parent_code == street_code
    )
    assert communities, street_code
    return communities[0]
