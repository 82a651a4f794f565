"""Fixtures of the document generator's tests: a storage directory of the test's own, an
issuer, and a context with every common key (the 厦禾路1108号 story of seed 000)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cityloop.documents import service, storage
from tests.conftest import TZ

NOW = datetime(2026, 8, 27, 16, 5, tzinfo=TZ)
ISSUER = "xm-siming-cgj"


@pytest.fixture(autouse=True)
def document_store(tmp_path: Path) -> Iterator[Path]:
    before = storage._root
    root = tmp_path / "documents"
    storage.configure(root)
    yield root
    storage._root = before


def story_context(**changes: Any) -> dict[str, Any]:
    """What an enforcement case of seed 000 gives every document. Legal bases are the
    caller's data; these strings only stand for them in the tests."""
    context: dict[str, Any] = {
        "party_name": "张某",
        "party_address": "厦门市思明区厦禾路1108号",
        "facts": "当事人将厦禾路1108号一套住宅擅自分隔为多套出租。",
        "violation_name": "擅自改变房屋结构（一套改多套）",
        "legal_basis": "测试用违法依据",
        "penalty_basis": "测试用处罚依据",
        "penalty_text": "罚款人民币伍仟元",
        "fine_yuan": 5000,
        "officers": ["林执法 35020300001", "陈执法 35020300002"],
        "place": "厦门市思明区厦禾路1108号",
        "case_number": "思城管立〔2026〕第7号",
        "date": date(2026, 8, 27),
        # the keys of particular kinds
        "source": "数字城管平台派遣",
        "started_at": datetime(2026, 8, 27, 9, 30, tzinfo=TZ),
        "ended_at": datetime(2026, 8, 27, 10, 15, tzinfo=TZ),
        "record_text": "问：房屋现由谁使用？\n答：分租给六户租客。",
        "deadline": date(2026, 9, 10),
        "rectification": "恢复房屋原状",
        "statement_deadline": date(2026, 9, 1),
        "hearing_deadline": date(2026, 9, 1),
        "hearing_time": datetime(2026, 9, 15, 9, 0, tzinfo=TZ),
        "hearing_place": "思明区城管局三楼会议室",
        "host": "黄主持",
        "delivered_documents": "行政处罚决定书",
        "delivery_method": "直接送达",
        "delivered_at": datetime(2026, 9, 20, 10, 0, tzinfo=TZ),
        "result": "当事人已缴纳罚款并恢复原状",
        "recipient_unit": "思明区城市管理局",
        "requirement": "按期办结并反馈",
        "content": "通报内容",
    }
    context.update(changes)
    return context


@pytest.fixture
def issuer(db_session: Session) -> str:
    service.register_issuer(db_session, ISSUER, "厦门市思明区城市管理局", "厦思城管")
    return ISSUER


def issue(session: Session, kind: str = "penalty_decision", **over: Any) -> Any:
    arguments: dict[str, Any] = {
        "kind": kind,
        "issuer_code": ISSUER,
        "context": story_context(),
        "subject_type": "enforcement_case",
        "subject_id": 1,
        "now": NOW,
        "actor_name": "林执法",
    }
    arguments.update(over)
    return service.issue_document(session, **arguments)
