"""Issuing documents (issue 14 part 3, R-LE-1): numbers per issuer, year and kind; the PDF read
back; templates edited as data; bytes checked against their hash; the dossier. On SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from cityloop.documents import service
from cityloop.documents.models import Document
from cityloop.errors import ValidationFailed
from tests.conftest import TZ
from tests.documents.conftest import NOW, issue, story_context
from tests.documents.test_templates import KINDS


def test_numbers_follow_each_issuer_year_and_kind(db_session, issuer):
    first = issue(db_session)
    second = issue(db_session)
    notice = issue(db_session, kind="prior_notice")
    service.register_issuer(db_session, "xm-huli-cgj", "厦门市湖里区城市管理局", "厦湖城管")
    other = issue(db_session, issuer_code="xm-huli-cgj")
    assert first.number == "厦思城管罚决字〔2026〕第1号"
    assert (first.year, first.seq) == (2026, 1)
    assert second.number == "厦思城管罚决字〔2026〕第2号"
    assert notice.number == "厦思城管罚告字〔2026〕第1号"
    assert other.number == "厦湖城管罚决字〔2026〕第1号"


def test_the_year_is_the_issuers_local_one(db_session, issuer):
    late = issue(db_session, now=datetime(2026, 12, 31, 23, 50, tzinfo=TZ))
    # 2027-01-01 00:30 in Xiamen is still 2026 in UTC: the number starts the new year.
    first = issue(db_session, now=datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert late.number == "厦思城管罚决字〔2026〕第1号"
    assert first.number == "厦思城管罚决字〔2027〕第1号"


def test_the_pdf_reads_back_with_its_head_and_the_story(db_session, issuer, document_store):
    document = issue(db_session)
    data = service.document_pdf(db_session, document.id)
    assert data.startswith(b"%PDF-")
    assert document.size == len(data)
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    assert (document_store / document.storage_key).read_bytes() == data
    text = service.pdf_text(data)
    for expected in (
        "厦门市思明区城市管理局",
        "行政处罚决定书",
        "厦思城管罚决字〔2026〕第1号",
        "当事人：张某",
        "违法事实：当事人将厦禾路1108号一套住宅擅自分隔为多套出租。",
        "处罚依据：测试用处罚依据",
        "林执法 35020300001、陈执法 35020300002",
        "2026年8月27日",
    ):
        assert expected in text, (expected, text)
    assert document.subject_type == "enforcement_case" and document.created_by == "林执法"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_seeded_kind_renders_from_the_common_context(db_session, issuer, kind):
    document = issue(db_session, kind=kind)
    text = service.pdf_text(service.document_pdf(db_session, document.id))
    assert KINDS[kind] in text and document.number in text
    assert document.title == KINDS[kind]


def test_a_missing_field_is_refused_naming_it_and_takes_no_number(db_session, issuer):
    context = story_context()
    del context["penalty_basis"]
    with pytest.raises(ValidationFailed) as refused:
        issue(db_session, context=context)
    assert refused.value.field == "penalty_basis"
    assert db_session.query(Document).count() == 0
    assert issue(db_session).seq == 1


def test_an_unknown_kind_or_issuer_is_refused_naming_the_field(db_session, issuer):
    with pytest.raises(ValidationFailed) as refused:
        issue(db_session, kind="no_such_kind")
    assert refused.value.field == "kind"
    with pytest.raises(ValidationFailed) as refused:
        issue(db_session, issuer_code="nobody")
    assert refused.value.field == "issuer_code"


def test_a_rolled_back_document_gives_its_number_back(db_session, issuer):
    issue(db_session)
    db_session.commit()
    issue(db_session)  # 第2号, then the transaction fails
    db_session.rollback()
    again = issue(db_session)
    assert again.seq == 2


def test_an_edited_template_makes_the_next_documents_and_leaves_the_made_ones(db_session, issuer):
    before = issue(db_session)
    old_bytes = service.document_pdf(db_session, before.id)
    kind = service.get_kind(db_session, "penalty_decision")
    kind_body = kind.body.replace("处罚决定：", "处罚内容：")
    service.update_kind(
        db_session, "penalty_decision", body=kind_body, now=NOW, actor_name="管理员"
    )
    after = issue(db_session)
    assert (before.template_version, after.template_version) == (1, 2)
    assert "处罚内容：罚款人民币伍仟元" in service.pdf_text(
        service.document_pdf(db_session, after.id)
    )
    assert service.document_pdf(db_session, before.id) == old_bytes


def test_an_edit_with_an_unknown_placeholder_changes_nothing(db_session, issuer):
    with pytest.raises(ValidationFailed) as refused:
        service.update_kind(
            db_session, "bulletin", body="{content} {secret}", now=NOW, actor_name="管理员"
        )
    assert refused.value.field == "body" and "{secret}" in refused.value.message
    kind = service.get_kind(db_session, "bulletin")
    assert kind.version == 1 and "{secret}" not in kind.body


def test_bytes_that_changed_in_storage_are_not_served(db_session, issuer, document_store):
    document = issue(db_session)
    (document_store / document.storage_key).write_bytes(b"%PDF-1.4 forged")
    with pytest.raises(RuntimeError, match="sha256"):
        service.document_pdf(db_session, document.id)


def test_the_dossier_holds_every_document_and_a_manifest_of_hashes(db_session, issuer):
    made = [issue(db_session, kind=k) for k in ("filing_approval", "prior_notice")]
    made.append(issue(db_session))
    issue(db_session, subject_id=2)  # another case's document stays out
    archive = zipfile.ZipFile(
        io.BytesIO(b"".join(service.export_dossier(db_session, "enforcement_case", 1)))
    )
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    assert [d["number"] for d in manifest["documents"]] == [d.number for d in made]
    for entry, document in zip(manifest["documents"], made, strict=True):
        data = archive.read(entry["file"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] == document.sha256
    sums = archive.read("SHA256SUMS").decode().splitlines()
    assert sums[0] == f"{made[0].sha256}  {manifest['documents'][0]['file']}"


def test_a_dossier_whose_stored_bytes_changed_breaks_off(db_session, issuer, document_store):
    document = issue(db_session)
    (document_store / document.storage_key).write_bytes(b"%PDF-1.4 forged")
    with pytest.raises(RuntimeError, match=document.number):
        b"".join(service.export_dossier(db_session, "enforcement_case", 1))
