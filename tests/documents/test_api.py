"""The documents API (issue 14 contract: GET /api/v1/enforcement/documents/{id}.pdf): the PDF
for staff the subject's owner lets see it, the dossier, and the administrator's template and
issuer edits with placeholders checked. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from cityloop.documents import service
from cityloop.org.models import User
from tests.documents.conftest import ISSUER, issue


@pytest.fixture
def readers() -> Iterator[None]:
    # "enforcement_case" as its owner would register it: here, inspectors see case 1 only.
    def can_read(session: Session, user: User, subject_id: int) -> bool:
        return user.role == "inspector" and subject_id == 1

    before = dict(service._readers)
    service.register_reader("enforcement_case", can_read)
    yield
    service._readers.clear()
    service._readers.update(before)


@pytest.fixture
def made(client, city_session: Session) -> int:
    service.register_issuer(city_session, ISSUER, "厦门市思明区城市管理局", "厦思城管")
    document = issue(city_session)
    city_session.commit()
    return int(document.id)


def test_the_pdf_is_served_to_staff_the_owner_allows(client, auth, made, readers):
    for path in (
        f"/api/v1/enforcement/documents/{made}.pdf",
        f"/api/v1/documents/{made}.pdf",
    ):
        response = client.get(path, headers=auth("inspector"))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert "厦思城管罚决字〔2026〕第1号" in service.pdf_text(response.content)
        assert (
            response.headers["x-content-sha256"]
            == client.get(f"/api/v1/documents/{made}", headers=auth("inspector")).json()["sha256"]
        )
        assert client.get(path, headers=auth("handler")).status_code == 403
        assert client.get(path).status_code == 401
    assert client.get("/api/v1/documents/999999.pdf", headers=auth("admin")).status_code == 404


def test_without_an_owner_only_an_administrator_reads(client, auth, made):
    path = f"/api/v1/enforcement/documents/{made}.pdf"
    assert client.get(path, headers=auth("admin")).status_code == 200
    refused = client.get(path, headers=auth("inspector"))
    assert refused.status_code == 403 and "enforcement_case" in refused.json()["detail"]


def test_a_subjects_list_and_dossier(client, auth, made, readers):
    params = {"subject_type": "enforcement_case", "subject_id": 1}
    listed = client.get("/api/v1/documents", params=params, headers=auth("inspector"))
    assert [d["id"] for d in listed.json()] == [made]
    response = client.get(
        "/api/v1/documents/dossiers/enforcement_case/1.zip", headers=auth("inspector")
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None and "manifest.json" in archive.namelist()
    other = client.get(
        "/api/v1/documents/dossiers/enforcement_case/2.zip", headers=auth("inspector")
    )
    assert other.status_code == 403


def test_an_administrator_edits_a_template_and_an_unknown_placeholder_is_422(
    client, auth, made, readers
):
    path = "/api/v1/documents/kinds/penalty_decision"
    kind = client.get(path, headers=auth("inspector")).json()
    assert kind["title"] == "行政处罚决定书" and kind["word"] == "罚决字"
    assert {"name": "penalty_basis", "label": "处罚依据", "optional": False} in kind["fields"]

    bad = client.put(
        path, json={"body": kind["body"] + "\n签发人：{signer}"}, headers=auth("admin")
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "body" and "{signer}" in bad.json()["detail"]
    denied = client.put(path, json={"body": kind["body"]}, headers=auth("inspector"))
    assert denied.status_code == 403

    edited = client.put(
        path, json={"body": kind["body"] + "\n备注：{note?}"}, headers=auth("admin")
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2 and edited.json()["updated_by"]
    assert client.get(path, headers=auth("inspector")).json()["body"].endswith("备注：{note?}")


def test_issuers_are_listed_and_an_administrator_changes_a_prefix(client, auth, made):
    path = f"/api/v1/documents/issuers/{ISSUER}"
    changed = client.put(
        path, json={"name": "厦门市思明区城市管理局", "prefix": "思城管"}, headers=auth("admin")
    )
    assert changed.status_code == 200 and changed.json()["prefix"] == "思城管"
    empty = client.put(path, json={"name": "", "prefix": "x"}, headers=auth("admin"))
    assert empty.status_code == 422 and empty.json()["field"] == "name"
    listed = client.get("/api/v1/documents/issuers", headers=auth("handler")).json()
    assert {"code": ISSUER, "name": "厦门市思明区城市管理局", "prefix": "思城管"} in listed
