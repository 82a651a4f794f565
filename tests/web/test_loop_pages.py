"""The whole loop driven through the pages by the people who work it (R-IN-2, R-AC-3, R-DIS-1,
R-DIS-4, R-HD-1, R-CL-1, R-CL-2, R-CL-4): the grid inspector reports from the phone with the
camera and GPS, the operator files it, the dispatcher dispatches it, the district office passes
it down to the street office, which submits its result with a photo; the centre approves, the
inspector checks it on site, the operator closes it, and a citizen whose report of the same
sewage joined the case rates the result, which archives it. Only the buttons the transition
table allows are on each page."""

from __future__ import annotations

from playwright.sync_api import expect

from cityloop.cases.service import timeline
from tests.web.conftest import SCREENSHOTS, YINGCUI, LiveServer, jpeg, login


def _photo(name: str, color: str) -> dict[str, object]:
    return {"name": name, "mimeType": "image/jpeg", "buffer": jpeg(color)}


def test_the_loop_through_the_pages(live_server: LiveServer, new_context) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    point = live_server.point(YINGCUI)
    description = "明发商业广场台球馆外污水横溢，污染路面（页面闭环）"

    # The inspector reports from the phone: GPS fills the position, the camera the photo.
    inspector = login(new_context(phone=True, where=point), "inspector")
    expect(inspector).to_have_url(f"{live_server.url}/m/inspector")
    expect(inspector.locator("#lon")).not_to_have_value("")
    inspector.select_option("#class_code", "21004")
    inspector.fill("#description", description)
    inspector.select_option("#urgency", "A")
    inspector.set_input_files("#photos", files=[_photo("before.jpg", "saddlebrown")])
    inspector.click("#send-report")
    expect(inspector.locator("#outbox-message")).to_contain_text("已发送")
    ticket = inspector.locator("#outbox-message").inner_text().split()[-1]
    case = live_server.case_by_ticket(ticket)
    assert (case.state, case.source, case.community) == ("pending_filing", "inspector", YINGCUI)

    # A passer-by reports the same sewage from the citizen's page: it joins the open case and
    # the citizen's ticket follows it.
    citizen = new_context(phone=True, where=point).new_page()
    citizen.goto("/h5/report")
    citizen.select_option("#class_code", "21004")
    citizen.fill("#description", "台球馆门口污水漫到人行道上了")
    citizen.fill("#reporter_phone", "13912340000")
    citizen.click("#locate-me")
    expect(citizen.locator("#lon")).not_to_have_value("")
    with citizen.expect_navigation():
        citizen.click("#send-citizen-report")
    citizen_ticket = citizen.locator("#new-ticket").inner_text().strip()
    expect(citizen.locator("#public-state")).to_have_text("待立案")
    duplicate = live_server.case_by_ticket(citizen_ticket)
    assert (duplicate.state, duplicate.merged_into_id) == ("merged", case.id)

    # The operator sees it in the intake queue, counted under its source, and files it.
    operator = login(new_context(), "operator")
    expect(operator.locator(".sources a[data-source=inspector] b")).not_to_have_text("0")
    row = operator.locator(f'tr[data-ticket="{ticket}"]')
    expect(row.locator(".c-state")).to_have_text("待立案")
    expect(row.locator("form.act-close")).to_have_count(0)  # not a button of this state
    with operator.expect_navigation():
        row.locator("form.act-file button").click()
    expect(operator.locator(f'tr[data-ticket="{ticket}"]')).to_have_count(0)

    # The dispatcher: the rules suggest the water company for sewage; the centre sends it to
    # the district office instead.
    dispatcher = login(new_context(), "dispatcher")
    row = dispatcher.locator(f'tr[data-ticket="{ticket}"]')
    expect(row.locator("select[name=department_id] option:checked")).to_have_text(
        "厦门水务集团有限公司"
    )
    row.locator("select[name=department_id]").select_option(label="思明区城市管理办公室")
    with dispatcher.expect_navigation():
        row.locator("button[data-action=dispatch]").click()
    assert live_server.case_by_ticket(ticket).state == "dispatched"

    # The district office passes it down to the street office (R-DIS-4).
    district = login(new_context(), "handler")
    with district.expect_navigation():
        district.locator(f'tr[data-ticket="{ticket}"] a.button').click()
    expect(district.locator("#act-return")).to_be_visible()  # received minutes ago: may return
    district.select_option("#pass_down-department_id", label="嘉莲街道办事处")
    with district.expect_navigation():
        district.click("#act-pass_down button[type=submit]")
    expect(district.locator("#case-department")).to_have_text("嘉莲街道办事处")
    expect(district.locator("#act-submit_result")).to_have_count(0)  # no longer holds it

    # The street office submits its result; first without the text: the message sits under
    # the field and the chosen method is still chosen.
    street = login(new_context(), "handler_jialian")
    street.goto(f"/case/{case.id}")
    street.select_option("#submit_result-method", "management")
    with street.expect_navigation():
        street.click("#act-submit_result button[type=submit]")
    expect(street.locator("#act-submit_result .field-error[data-field=result]")).to_be_visible()
    expect(street.locator("#submit_result-method")).to_have_value("management")
    street.fill("#submit_result-result", "物业已疏通管道，路面冲洗干净")
    street.set_input_files("#submit_result-photos", files=[_photo("after.jpg", "lightgray")])
    with street.expect_navigation():
        street.click("#act-submit_result button[type=submit]")
    expect(street.locator("#case-state")).to_have_text("已反馈")
    expect(street.locator("#photos-after img")).to_have_count(1)
    expect(street.locator("#photos-before img")).to_have_count(1)

    # The centre approves the result from the review queue.
    dispatcher.goto("/desk/dispatch?tab=review")
    with dispatcher.expect_navigation():
        dispatcher.locator(f'tr[data-ticket="{ticket}"] form.act-approve_result button').click()

    # The inspector checks on site (task list on the phone) with a photo.
    inspector.goto("/m/inspector?tab=tasks")
    with inspector.expect_navigation():
        inspector.locator(f'#tasks-check a[data-case="{case.id}"]').click()
    inspector.check("#report_check-passed input[value=yes]")
    inspector.set_input_files("#report_check-photos", files=[_photo("check.jpg", "silver")])
    with inspector.expect_navigation():
        inspector.click("#act-report_check button[type=submit]")
    expect(inspector.locator("#case-state")).to_have_text("待结案")

    # The operator closes it.
    operator.goto("/desk/accept?tab=close")
    with operator.expect_navigation():
        operator.locator(f'tr[data-ticket="{ticket}"] form.act-close button').click()
    assert live_server.case_by_ticket(ticket).state == "closed"

    # The citizen rates the result with the ticket and the number they reported with
    # (R-CL-4); a wrong number is answered under its field. Satisfied archives the case.
    citizen.goto(f"/h5/track?ticket={citizen_ticket}")
    expect(citizen.locator("#public-state")).to_have_text("已结案")
    citizen.check("#rate-form input[value=yes]")
    citizen.fill("#phone", "13900000000")
    citizen.fill("#comment", "处理很及时")
    with citizen.expect_navigation():
        citizen.click("#send-rating")
    expect(citizen.locator('.field-error[data-field="phone"]')).to_be_visible()
    expect(citizen.locator("#comment")).to_have_value("处理很及时")
    citizen.fill("#phone", "13912340000")
    with citizen.expect_navigation():
        citizen.click("#send-rating")
    expect(citizen.locator("#rated")).to_be_visible()
    expect(citizen.locator("#public-state")).to_have_text("已归档")

    operator.goto(f"/case/{case.id}")
    expect(operator.locator("#case-state")).to_have_text("已归档")
    expect(operator.locator("#no-actions")).to_be_visible()
    operator.screenshot(path=str(SCREENSHOTS / "case-archived.png"), full_page=True)

    with live_server.session() as session:
        actions = [e.action for e in timeline(session, case.id)]
    assert actions == [
        "report",
        "duplicate_report",
        "file",
        "dispatch",
        "pass_down",
        "submit_result",
        "approve_result",
        "report_check",
        "close",
        "return_visit",
    ]
    for page in (inspector, operator, dispatcher, district, street, citizen):
        assert not getattr(page, "js_errors", []), page.js_errors
