"""The console's learning pages without a browser (SQLite and PostgreSQL): the suggestions
under the registration form's description, the registration recording the choice, and the
shift leader's page with live accuracy, the model versions and the integrity flags."""

from __future__ import annotations

from sqlalchemy import select

from cityloop.learning.models import SuggestionRecord
from tests.cases.helpers import point_in
from tests.learning.test_learning import YINGCUI, trained  # noqa: F401 (fixture)
from tests.web.conftest import form_login


def test_the_registration_form_shows_suggestions_and_records_the_choice(
    client,
    city_session,
    city_places,
    trained,  # noqa: F811
):
    token = form_login(client, "operator")
    form = client.get("/desk/accept/new")
    assert 'id="suggestions"' in form.text
    lon, lat = point_in(city_places, YINGCUI)
    fragment = client.post(
        "/desk/accept/suggest",
        data={
            "description": "垃圾桶满了没人清",
            "lon": str(lon),
            "lat": str(lat),
            "csrf_token": token,
        },
    )
    assert fragment.status_code == 200
    assert 'data-code="06042"' in fragment.text and trained.version in fragment.text
    assert "厦门市环境卫生中心" in fragment.text
    forged = client.post("/desk/accept/suggest", data={"description": "垃圾桶满了"})
    assert forged.status_code == 403
    registered = client.post(
        "/desk/accept/new",
        data={
            "source": "hotline_12345",
            "class_code": "06010",
            "description": "垃圾桶满了没人清",
            "lon": str(lon),
            "lat": str(lat),
            "urgency": "C",
            "reporter_phone": "13900000001",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert registered.status_code == 303, registered.text
    record = city_session.scalar(select(SuggestionRecord).order_by(SuggestionRecord.id.desc()))
    assert record.top_class == "06042" and record.chosen_class == "06010"
    assert record.accepted is False  # overridden
    client.cookies.clear()
    form_login(client, "shiftlead")
    page = client.get("/learning")
    assert page.status_code == 200
    assert trained.version in page.text and 'id="live-7"' in page.text
    assert "智能建议与诚信" in page.text  # in the menu
    client.cookies.clear()
    form_login(client, "handler")
    assert client.get("/learning").status_code == 403
