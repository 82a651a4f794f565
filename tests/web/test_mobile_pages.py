"""Pages on a phone: the citizen's H5 report and tracking (R-IN-3) under the citizens' channel's
rules, and the inspector's app working without signal (R-IN-2): a report made offline waits in
the browser and, once the network is back, makes exactly one case."""

from __future__ import annotations

from playwright.sync_api import expect

from cityloop.cases.service import timeline
from tests.web.conftest import SCREENSHOTS, LiveServer, jpeg, login

WUCUN_COMMUNITY = "350203008001"  # a community of 梧村街道
JIALIAN_OTHER = "350203011004"  # 莲花北社区, another community in the inspector's street (嘉莲街道)


def test_a_citizen_reports_with_a_map_pin_gets_a_ticket_and_tracks_it(
    live_server: LiveServer, new_context
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    description = "小区门口垃圾堆放三天无人清理（市民H5）"
    page = new_context(phone=True, where=live_server.point(WUCUN_COMMUNITY)).new_page()
    page.goto("/h5")
    with page.expect_navigation():
        page.click("#go-report")

    # Nothing filled in: each message sits under its field.
    with page.expect_navigation():
        page.click("#send-citizen-report")
    for field in ("class_code", "description", "location"):
        expect(page.locator(f'.field-error[data-field="{field}"]')).to_be_visible()

    # A bad phone number: refused, and everything typed is still there.
    page.select_option("#class_code", "06010")
    page.fill("#description", description)
    page.fill("#reporter_name", "陈女士")
    page.fill("#reporter_phone", "call me")
    page.click("#locate-me")
    expect(page.locator("#lon")).not_to_have_value("")
    with page.expect_navigation():
        page.click("#send-citizen-report")
    expect(page.locator('.field-error[data-field="reporter_phone"]')).to_be_visible()
    expect(page.locator("#description")).to_have_value(description)
    expect(page.locator("#class_code")).to_have_value("06010")
    expect(page.locator("#reporter_name")).to_have_value("陈女士")
    expect(page.locator("#lon")).not_to_have_value("")
    assert live_server.cases_described(description) == []

    page.fill("#reporter_phone", "13912345678")
    page.set_input_files(
        "#photos",
        files=[{"name": "rubbish.jpg", "mimeType": "image/jpeg", "buffer": jpeg("olive")}],
    )
    page.screenshot(path=str(SCREENSHOTS / "h5-report.png"), full_page=True)
    with page.expect_navigation():
        page.click("#send-citizen-report")
    ticket = page.locator("#new-ticket").inner_text().strip()
    expect(page.locator("#public-state")).to_have_text("上报")
    # The public page shows no personal data.
    assert "13912345678" not in page.content() and "陈女士" not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "h5-track.png"), full_page=True)

    (case,) = live_server.cases_described(description)
    assert (case.ticket, case.source, case.state) == (ticket, "web", "reported")
    assert case.street == "350203008"
    with live_server.session() as session:
        (report,) = [e for e in timeline(session, case.id) if e.action == "report"]
        assert len(report.photos) == 1  # kept by the media package

    # Tracking from the home page by the ticket; a wrong ticket is answered under the field.
    page.goto("/h5")
    page.fill("#ticket", ticket.lower())
    with page.expect_navigation():
        page.click("#track-form button[type=submit]")
    expect(page.locator("#progress")).to_contain_text("上报")
    page.fill("#ticket", "NOSUCHTICKET")
    with page.expect_navigation():
        page.click("#track-form button[type=submit]")
    expect(page.locator('.field-error[data-field="ticket"]')).to_have_text("没有找到该受理编号")


def test_a_report_made_offline_is_sent_once_when_the_signal_returns(
    live_server: LiveServer, new_context
) -> None:
    description = "店外经营，餐馆桌椅摆到门外（离线上报）"
    context = new_context(phone=True, where=live_server.point(JIALIAN_OTHER))
    page = login(context, "inspector")
    expect(page.locator("#lon")).not_to_have_value("")

    context.set_offline(True)
    page.select_option("#class_code", "09005")
    page.fill("#description", description)
    page.set_input_files(
        "#photos", files=[{"name": "shop.jpg", "mimeType": "image/jpeg", "buffer": jpeg("tan")}]
    )
    page.click("#send-report")
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "1")
    expect(page.locator("#outbox-message")).to_contain_text("无网络")
    expect(page.locator("#description")).to_have_value("")  # ready for the next report
    assert live_server.cases_described(description) == []

    context.set_offline(False)
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "0", timeout=20_000)
    expect(page.locator("#outbox-message")).to_contain_text("已发送")
    ticket = page.locator("#outbox-message").inner_text().split()[-1]

    (case,) = live_server.cases_described(description)
    assert (case.ticket, case.source, case.state) == (ticket, "inspector", "pending_filing")

    # The same report sent again (a lost answer, a second tab) returns the same case.
    key = live_server.case_by_ticket(ticket).idempotency_key
    assert key is not None
    replay = page.evaluate(
        """async ([key, description, lon, lat]) => {
            const body = new FormData();
            for (const [k, v] of Object.entries({class_code: '09005', description, lon, lat})) {
                body.append(k, v);
            }
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/m/inspector/report', {method: 'POST', body,
                headers: {'Accept': 'application/json', 'Idempotency-Key': key,
                          'X-CSRF-Token': csrf}});
            return [r.status, await r.json()];
        }""",
        # Stored as source:sender:key (a key is its sender's alone, issue 23).
        [key.split(":", 2)[2], description, str(case.lon), str(case.lat)],
    )
    assert replay[0] == 200 and replay[1]["ticket"] == ticket and replay[1]["created"] is False
    assert len(live_server.cases_described(description)) == 1
    assert not page.js_errors


def test_the_inspectors_bad_report_is_answered_next_to_its_field_and_kept(
    live_server: LiveServer, new_context
) -> None:
    """Bad input on the phone: a missing class is caught before anything is queued, a text the
    server refuses (over 2000 characters) comes back under its field; in both cases what was
    typed is still there, nothing waits in the outbox and no case is made."""
    context = new_context(phone=True, where=live_server.point(JIALIAN_OTHER))
    page = login(context, "inspector")
    expect(page.locator("#lon")).not_to_have_value("")

    description = "人行道上堆放建筑垃圾（表单校验）"
    page.fill("#description", description)
    page.click("#send-report")
    expect(page.locator('.field-error[data-field="class_code"]')).to_have_text("请填写问题类别")
    expect(page.locator("#description")).to_have_value(description)
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "0")

    too_long = "渣" * 2001
    page.select_option("#class_code", "06036")
    page.fill("#description", too_long)
    page.click("#send-report")
    expect(page.locator('.field-error[data-field="description"]')).to_have_text("最多2000字")
    expect(page.locator('.field-error[data-field="class_code"]')).to_have_count(0)
    expect(page.locator("#description")).to_have_value(too_long)
    expect(page.locator("#class_code")).to_have_value("06036")
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "0")
    assert live_server.cases_described(too_long) == []
    assert not page.js_errors
