"""The administrator's document templates page (/admin/documents): kinds listed, a template
edited through the form, an unknown placeholder refused under the template's field with
nothing saved. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

from cityloop.documents import service
from tests.web.conftest import form_login


def _error_under(page: str, field: str) -> str:
    match = re.search(rf'class="field-error" data-field="{field}">([^<]+)<', page)
    assert match, f"no message under {field}"
    return html.unescape(match.group(1))


def test_an_administrator_edits_a_template_in_the_page(client, city_session):
    token = form_login(client, "admin")
    listing = client.get("/admin/documents")
    assert listing.status_code == 200
    assert "行政处罚决定书" in listing.text and 'data-code="on_site_decision"' in listing.text
    assert 'href="/admin/documents"' in client.get("/admin").text

    form = client.get("/admin/documents/bulletin")
    assert form.status_code == 200 and "{recipient_unit?}" in html.unescape(form.text)
    refused = client.post(
        "/admin/documents/bulletin",
        data={"csrf_token": token, "title": "通报", "word": "通报字", "body": "{content}{oops}"},
    )
    assert refused.status_code == 422
    assert "{oops}" in _error_under(refused.text, "body")
    assert service.get_kind(city_session, "bulletin").version == 1

    saved = client.post(
        "/admin/documents/bulletin",
        data={
            "csrf_token": token,
            "title": "情况通报",
            "word": "通报字",
            "body": "正文：{content}",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    city_session.expire_all()
    kind = service.get_kind(city_session, "bulletin")
    assert (kind.title, kind.body, kind.version) == ("情况通报", "正文：{content}", 2)
    assert kind.updated_by


def test_the_page_is_the_administrators_only(client):
    form_login(client, "operator")
    assert client.get("/admin/documents", follow_redirects=False).status_code == 403
