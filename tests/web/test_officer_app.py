"""执法通 on a phone (seed 004, R-LE-1): an officer opens a case on site with the second officer
present, photos and an inspection record, and decides under the simple procedure; made without
signal, the form waits in the browser and makes exactly one enforcement case when the network
is back; the 当场处罚决定书 opens as a PDF on the phone."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from cityloop.enforcement.ids import id_check_char
from cityloop.enforcement.models import EnforcementCase
from tests.web.conftest import LiveServer, jpeg, login

WUCUN_COMMUNITY = "350203008001"


def test_an_on_site_case_made_offline_is_sent_once_and_its_pdf_opens(
    live_server: LiveServer, new_context
) -> None:
    context = new_context(phone=True, where=live_server.point(WUCUN_COMMUNITY))
    page = login(context, "officer")
    assert page.url.endswith("/m/officer")
    page.goto("/m/officer?tab=onsite")
    expect(page.locator("#lon")).not_to_have_value("")

    context.set_offline(True)
    body = "35020319900101123"
    facts = "店门外摆放货架经营约3平方米（执法通离线）"
    page.select_option("#violation_code", "SR-DW-01")
    page.fill("#party_name", "李四")
    page.fill("#id_number", body + id_check_char(body))
    page.fill("#facts", facts)
    page.fill("#record_text", "现场检查：店门外摆放货架两个")
    page.set_input_files(
        "#photos", files=[{"name": "shop.jpg", "mimeType": "image/jpeg", "buffer": jpeg("tan")}]
    )
    page.check("#decide")
    page.fill("#fine", "100")
    page.click("#send-onsite")
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "1")
    expect(page.locator("#outbox-message")).to_contain_text("无网络")

    def made() -> list[EnforcementCase]:
        with live_server.session() as session:
            return list(
                session.scalars(select(EnforcementCase).where(EnforcementCase.facts == facts))
            )

    assert made() == []
    context.set_offline(False)
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "0", timeout=20_000)
    expect(page.locator("#outbox-message")).to_contain_text("当罚字")
    (record,) = made()
    assert record.state == "executing" and record.procedure == "simple"
    assert record.fine_cents == 10_000 and record.evidence_count == 1

    # The same form sent again returns the same case.
    assert record.idempotency_key is not None
    replay = page.evaluate(
        """async (key) => {
            const body = new FormData();
            body.append('violation_code', 'SR-DW-01');
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/m/officer/onsite', {method: 'POST', body,
                headers: {'Accept': 'application/json', 'Idempotency-Key': key,
                          'X-CSRF-Token': csrf}});
            return [r.status, await r.json()];
        }""",
        record.idempotency_key.split(":", 1)[1],
    )
    assert replay[0] == 200 and replay[1]["id"] == record.id
    assert len(made()) == 1

    page.goto("/m/officer")
    row = page.locator(f'[data-enforcement="{record.id}"]')
    expect(row).to_contain_text("擅自在街道两侧")
    link = row.locator('a.doc[data-kind="on_site_decision"]')
    href = link.get_attribute("href")
    assert href is not None
    pdf = page.request.get(href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body()[:5] == b"%PDF-"
    assert not page.js_errors
