"""The national taxonomy as the package's default data (R-AC-5), legacy codes as aliases,
local extension classes, and each class's editable standards (R-DX-2)."""

from __future__ import annotations

import pytest

from cityloop.errors import ValidationFailed
from cityloop.taxonomy.service import default_rows, get_class, seed_defaults


def test_default_data_holds_the_gbt_47678_5_lists_and_local_extensions():
    classes, aliases = default_rows()
    standard = [
        c for c in classes if c["standard"] == "GB/T 47678.5-2026" and c["level"] == "minor"
    ]
    assert sum(c["kind"] == "component" for c in standard) == 153
    assert sum(c["kind"] == "event" for c in standard) == 97
    by_code = {c["code"]: c for c in classes}
    assert by_code["01002"]["matter_name"] == "污水井盖异常"
    assert by_code["09006"]["name"] == "占道经营"
    assert by_code["21001"]["name"] == "道路积水" and by_code["21001"]["standard"] == "local"
    assert by_code["01002"]["default_urgency"] == "A"
    assert "污水井盖" in by_code["01002"]["filing_standard"]
    assert by_code["06010"]["handling_days"] == {"A": 1, "B": 2, "C": 4}
    # Codes absent from the standard are not invented.
    assert not {"01016", "05001", "06031", "07005", "09007"} & set(by_code)
    alias = {(a["scheme"], a["alias"]): a["class_code"] for a in aliases}
    assert alias[("GB/T 30428.2", "0101")] == "01001"  # 上水井盖 → 供水井盖
    assert alias[("GB/T 30428.2-events", "04-06")] == "09006"


def test_lookup_by_code_or_legacy_alias_and_clear_errors(db_session):
    assert seed_defaults(db_session) > 250
    assert seed_defaults(db_session) == 0  # seeding twice changes nothing
    assert get_class(db_session, "0102").code == "01002"
    with pytest.raises(ValidationFailed, match="unknown problem class"):
        get_class(db_session, "12345")
    with pytest.raises(ValidationFailed, match="major class"):
        get_class(db_session, "01")


def test_admin_edits_a_class_standard_and_others_may_not(client, auth):
    body = {
        "filing_standard": "井盖缺失或破损面积超过10%的，立即立案。",
        "handling_days": {"A": 0.5},
    }
    assert (
        client.patch("/api/v1/classes/01002", json=body, headers=auth("operator")).status_code
        == 403
    )
    response = client.patch("/api/v1/classes/01002", json=body, headers=auth("admin"))
    assert response.status_code == 200, response.text
    assert client.get("/api/v1/classes/01002").json()["filing_standard"].startswith("井盖缺失")
    bad = client.patch(
        "/api/v1/classes/01002", json={"handling_days": {"A": -1}}, headers=auth("admin")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "handling_days"
    assert client.get("/api/v1/classes/nope").status_code == 404
