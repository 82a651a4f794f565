"""Templates as data (issue 14 part 3, R-LE-1): the seeded kinds, placeholders checked, values
filled as a document prints them. Pure: no database."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cityloop.documents import render
from cityloop.documents.service import packaged_kinds
from cityloop.errors import ValidationFailed
from tests.conftest import TZ

KINDS = {
    "filing_approval": "立案审批表",
    "inquiry_record": "询问笔录",
    "inspection_record": "勘验检查笔录",
    "rectification_notice": "责令（限期）改正通知书",
    "prior_notice": "行政处罚事先告知书",
    "hearing_notice": "听证告知书",
    "hearing_record": "听证笔录",
    "penalty_decision": "行政处罚决定书",
    "delivery_receipt": "送达回证",
    "closing_approval": "结案审批表",
    "on_site_decision": "当场行政处罚决定书",
    "supervision_notice": "督办意见书",
    "bulletin": "通报",
}


def test_the_package_ships_every_kind_of_the_interface_with_its_title():
    seeds = packaged_kinds()
    assert {code: seed.title for code, seed in seeds.items()} == KINDS
    words = [seed.word for seed in seeds.values()]
    assert len(set(words)) == len(words), "two kinds with one word would share numbers' look"
    assert seeds["penalty_decision"].word == "罚决字"


def test_the_fixed_text_is_labels_and_the_legal_bases_come_from_the_context():
    # No template states a law itself: the article cited is always a placeholder.
    for seed in packaged_kinds().values():
        assert "《" not in seed.body and "条" not in seed.body, seed.code
    decision = packaged_kinds()["penalty_decision"].body
    for label in ("当事人：{party_name}", "违法事实：{facts}", "处罚依据：{penalty_basis}"):
        assert label in decision


def test_fill_prints_lists_dates_and_amounts_as_a_document_does():
    text = render.fill(
        "执法人员：{officers}；日期：{date}；时间：{started_at}；罚款：{fine_yuan}元",
        {
            "officers": ["林执法 35020300001", "陈执法 35020300002"],
            "date": date(2026, 8, 27),
            "started_at": datetime(2026, 8, 27, 9, 5, tzinfo=TZ),
            "fine_yuan": 5000.0,
        },
    )
    assert text == (
        "执法人员：林执法 35020300001、陈执法 35020300002；日期：2026年8月27日；"
        "时间：2026年8月27日 09时05分；罚款：5000元"
    )


def test_a_missing_required_value_is_refused_naming_it_and_an_optional_one_left_blank():
    with pytest.raises(ValidationFailed) as refused:
        render.fill("当事人：{party_name}", {"party_name": None})
    assert refused.value.field == "party_name"
    assert "当事人" in refused.value.message
    assert render.fill("缴款方式：{payment_text?}。{{原样}}", {}) == "缴款方式：。{原样}"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("当事人：{party_nmae}", "{party_nmae}"),
        ("{party_name.__class__}", "{party_name.__class__}"),
        ("{party_name[0]}", "{party_name[0]}"),
        ("{fine_yuan:>10}", "{fine_yuan}"),
        ("{party_name!r}", "{party_name}"),
    ],
)
def test_an_unknown_or_computed_placeholder_is_refused_naming_it(body, named):
    with pytest.raises(ValidationFailed) as refused:
        render.check_template(body)
    assert refused.value.field == "body"
    assert named in refused.value.message


def test_a_stray_brace_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        render.check_template("当事人：{party_name")
    assert refused.value.field == "body"


def test_a_placeholder_required_anywhere_is_required():
    used = render.check_template("{note?} {note} {date?}")
    assert [(p.name, p.optional) for p in used] == [("note", False), ("date", True)]


def test_long_lines_wrap_and_no_line_starts_with_a_closing_mark():
    render.font_path()
    text = "当事人将住宅擅自分隔为多套出租，" * 12
    lines = render._wrap(text, 200, 12)
    assert len(lines) > 5 and "".join(lines) == text
    assert not any(line[:1] in "，。、；：" for line in lines)
