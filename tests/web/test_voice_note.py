"""The inspector's voice note (R-IN-2: "photo, voice, form, position"): recorded in the page
with the phone's microphone, kept with the report in the offline outbox, sent when the signal
returns, stored by the media package's voice checks and played on the case page.

The browser test runs in a chromium of its own with a fake microphone (a beep); the checks of
what the server accepts run without a browser on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import timeline
from cityloop.media.models import Media
from tests.cases.helpers import YINGCUI, point_in
from tests.web.conftest import SCREENSHOTS, LiveServer, form_login, jpeg, login

JIALIAN_OTHER = "350203011004"  # 莲花北社区, another community of the inspector's street (嘉莲街道)


def _report_voice(live: LiveServer, case: Case) -> Media:
    with live.session() as session:
        (report,) = [e for e in timeline(session, case.id) if e.action == "report"]
        voice_id = report.payload.get("voice")
        assert isinstance(voice_id, str), report.payload
        media = session.get(Media, voice_id)
        assert media is not None
        return media


def test_a_voice_note_recorded_offline_goes_with_its_report(
    live_server: LiveServer, media_context: Any
) -> None:
    """Record, stop, listen; submit without signal: the report and its recording wait in the
    browser, and once online make one case whose report carries the voice note."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    description = "井盖松动，踩上去有响声（语音说明）"
    context = media_context(
        phone=True,
        where=live_server.point(JIALIAN_OTHER),
        permissions=["geolocation", "microphone"],
    )
    page = login(context, "inspector")
    expect(page.locator("#lon")).not_to_have_value("")
    expect(page.locator("#voice-recorder")).to_be_visible()
    expect(page.locator("#voice")).to_be_hidden()  # the plain file input is the fallback only

    page.click("#voice-record")
    expect(page.locator("#voice-recorder")).to_have_attribute("data-state", "recording")
    time.sleep(1.2)  # a second of the fake microphone's beep
    page.click("#voice-stop")
    expect(page.locator("#voice-recorder")).to_have_attribute("data-state", "recorded")
    expect(page.locator("#voice-preview")).to_be_visible()
    size = int(page.locator("#voice-recorder").get_attribute("data-size") or 0)
    assert size > 0

    context.set_offline(True)
    page.select_option("#class_code", "01002")
    page.fill("#description", description)
    page.set_input_files(
        "#photos", files=[{"name": "cover.jpg", "mimeType": "image/jpeg", "buffer": jpeg("gray")}]
    )
    page.screenshot(path=str(SCREENSHOTS / "inspector-voice.png"), full_page=True)
    page.click("#send-report")
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "1")
    expect(page.locator("#voice-recorder")).to_have_attribute("data-state", "idle")
    stored = page.evaluate(
        "() => cityloop.outbox.all().then(items => items.map(i => i.voice && i.voice.blob.size))"
    )
    assert stored == [size]  # the recording waits in IndexedDB with its report
    assert live_server.cases_described(description) == []

    context.set_offline(False)
    expect(page.locator("#outbox-count")).to_have_attribute("data-count", "0", timeout=20_000)
    (case,) = live_server.cases_described(description)
    media = _report_voice(live_server, case)
    assert (media.kind, media.content_type, media.size) == ("voice", "audio/webm", size)
    assert (live_server.data_dir / "media" / media.stored_name).stat().st_size == size
    assert not page.js_errors

    # Staff hear it on the case page.
    desk = login(media_context(), "operator")
    desk.goto(f"/case/{case.id}")
    audio = desk.locator("#voice-notes audio")
    expect(audio).to_have_count(1)
    played = desk.request.get(audio.get_attribute("src") or "")
    assert played.status == 200 and played.headers["content-type"].startswith("audio/webm")


def _post_report(
    client: TestClient, token: str, places: Any, description: str, voice: tuple[str, bytes, str]
) -> Any:
    lon, lat = point_in(places, YINGCUI)
    return client.post(
        "/m/inspector/report",
        data={"class_code": "06010", "description": description, "lon": str(lon), "lat": str(lat)},
        files={"voice": voice},
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )


def test_the_server_keeps_a_real_voice_note_and_refuses_anything_else(
    client: TestClient, city_places: Any, city_session: Session
) -> None:
    """What the phone sends goes through the media package's voice checks: an audio type and
    a size within the limit; anything else is refused under the voice field, no case made."""
    token = form_login(client, "inspector")
    refused = _post_report(
        client, token, city_places, "路边垃圾（不是录音）", ("note.txt", b"hello", "text/plain")
    )
    assert refused.status_code == 422, refused.text
    assert "text/plain" in refused.json()["errors"]["voice"]
    empty = _post_report(
        client, token, city_places, "路边垃圾（空录音）", ("voice.webm", b"", "audio/webm")
    )
    assert empty.status_code == 422 and "voice" in empty.json()["errors"]
    assert city_session.scalar(select(Case).where(Case.description.like("路边垃圾（%"))) is None

    sound = b"OggS" + bytes(range(256)) * 8
    made = _post_report(
        client,
        token,
        city_places,
        "路边垃圾（带录音）",
        ("voice.ogg", sound, "audio/ogg;codecs=opus"),
    )
    assert made.status_code == 201, made.text
    (report,) = [e for e in timeline(city_session, made.json()["id"]) if e.action == "report"]
    media = city_session.get(Media, report.payload["voice"])
    assert media is not None
    assert (media.kind, media.content_type, media.size) == ("voice", "audio/ogg", len(sound))
