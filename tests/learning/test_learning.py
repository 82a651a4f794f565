"""Learning from the city's history (issue 18): the suggester beats the keyword guess on a
held-out part, the import refuses bad rows whole, the suggestion API's contract, the accepted /
overridden record with the model version on the timeline, a duplicate found by meaning, a
reused photo flagged across two cases, the re-check draw's share, the early-warning alert on a
planted surge. Storage tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import Actor
from cityloop.errors import ValidationFailed
from cityloop.intake.classify import suggest as keyword_suggest
from cityloop.intake.service import SEMANTIC_DUPLICATE_SCORE, Report, receive
from cityloop.learning import integrity, service, synthetic, warning
from cityloop.learning import suggester as ml
from cityloop.learning.models import HistoryRecord, IntegrityFlag, SuggestionRecord
from cityloop.media.service import store_photo
from cityloop.org.models import Department, User
from cityloop.taxonomy.service import minor_class_names, working_calendar
from tests.cases.helpers import point_in

YINGCUI = "350203011003"
START = datetime(2025, 6, 1, tzinfo=UTC)


def _csv(messages, encoding="utf-8", extra_rows=()) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "class_code", "department", "created_at", "source"])
    for m in messages:
        writer.writerow([m.text, m.class_code, m.department, m.created_at.isoformat(), "12345"])
    for row in extra_rows:
        writer.writerow(row)
    return out.getvalue().encode(encoding)


def test_the_suggester_beats_the_keyword_guess_on_held_out_history(city_session):
    """R-AC-5: trained on 80 % of a generated history, better than keyword voting on the rest."""
    messages = synthetic.history(1500, start=START)
    train, test = messages[:1200], messages[1200:]
    model = ml.train(
        [m.text for m in train],
        [m.district for m in train],
        [m.class_code for m in train],
        [m.department for m in train],
    )
    figures = ml.evaluate(
        model,
        [m.text for m in test],
        [m.district for m in test],
        [m.class_code for m in test],
        [m.department for m in test],
    )
    names = minor_class_names(city_session)
    guesses = [(keyword_suggest(m.text, names) or [None])[0] for m in test]
    keyword = ml.scores([m.class_code for m in test], [g.class_code if g else "" for g in guesses])
    assert figures["class"]["macro_f1"] > keyword["macro_f1"] + 0.1, (figures, keyword)
    assert figures["class"]["accuracy"] > 0.85
    assert figures["department"]["accuracy"] > 0.85
    classes, departments = model.suggest("垃圾桶满了没人清", "350203")
    assert classes[0][0] == "06042" and 0 < classes[0][1] <= 1
    assert len(classes) == 3 and len(departments) == 3
    assert isinstance(ml.loads(model.dumps()), ml.Suggester)


def test_an_import_with_bad_rows_imports_nothing_and_lists_them(city_session):
    good = synthetic.history(5, start=START)
    data = _csv(
        good,
        extra_rows=[
            ["", "06042", "", "", ""],
            ["噪音", "99999", "", "", ""],
            ["积水", "21001", "", "昨天下午", ""],
        ],
    )
    report = service.import_history(city_session, data, batch="old.csv", now=START)
    assert report.imported == 0
    assert [line for line, _ in report.refused] == [7, 8, 9]
    assert "text" in report.refused[0][1] and "99999" in report.refused[1][1]
    assert "created_at" in report.refused[2][1]
    assert city_session.scalar(select(HistoryRecord.id).limit(1)) is None
    report = service.import_history(city_session, data, batch="old.csv", now=START, skip_bad=True)
    assert report.imported == 5 and len(report.refused) == 3


def test_an_import_reads_gb18030_and_lists_or_creates_unknown_departments(city_session):
    messages = synthetic.history(3, start=START)
    rows = [["路灯不亮", "01037", "某某照明公司", "2025-06-01 08:00", ""]]
    data = _csv(messages, encoding="gb18030", extra_rows=rows)
    report = service.import_history(city_session, data, batch="gbk.csv", now=START)
    assert report.imported == 4 and report.unknown_departments == {"某某照明公司": 1}
    texts = set(city_session.scalars(select(HistoryRecord.text)))
    assert {m.text for m in messages} <= texts
    report = service.import_history(
        city_session, data, batch="gbk.csv", now=START, create_departments=True
    )
    assert report.created_departments == ["某某照明公司"]
    assert city_session.scalar(select(Department).where(Department.name == "某某照明公司"))
    with pytest.raises(ValidationFailed) as missing:
        service.import_history(city_session, b"class_code\n06042\n", batch="x", now=START)
    assert missing.value.field == "text"


def test_learn_on_too_little_says_so_instead_of_storing_a_model(city_session):
    service.import_history(
        city_session, _csv(synthetic.history(20, start=START)), batch="a", now=START
    )
    with pytest.raises(ValidationFailed, match="too little"):
        service.learn(city_session, now=START)
    assert service.suggest(city_session, "路灯不亮") is None


@pytest.fixture
def trained(city_session, city_places):
    service.import_history(
        city_session,
        _csv(synthetic.history(900, start=START)),
        batch="history.csv",
        now=START,
        places=city_places,
    )
    model = service.learn(city_session, now=START + timedelta(days=400))
    city_session.flush()
    return model


def test_the_suggestion_api_answers_with_classes_departments_and_the_model(
    client, auth, trained, city_places
):
    lon, lat = point_in(city_places, YINGCUI)
    response = client.post(
        "/api/v1/suggestions",
        json={"text": "果皮箱溢出，垃圾散落一地", "lon": lon, "lat": lat},
        headers=auth("operator"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == trained.version
    assert body["classes"][0]["code"] == "06042"
    assert len(body["classes"]) == 3 and all(0 <= c["p"] <= 1 for c in body["classes"])
    assert body["departments"][0]["name"] == "厦门市环境卫生中心"
    assert trained.metrics["class"]["macro_f1"] > 0.8
    empty = client.post("/api/v1/suggestions", json={"text": ""}, headers=auth("operator"))
    assert empty.status_code == 422 and empty.json()["field"] == "text"
    long = client.post(
        "/api/v1/suggestions", json={"text": "路灯" * 5000}, headers=auth("operator")
    )
    assert long.status_code == 200
    assert client.post("/api/v1/suggestions", json={"text": "x"}).status_code == 401
    inspector = client.post("/api/v1/suggestions", json={"text": "x"}, headers=auth("inspector"))
    assert inspector.status_code == 403


def _operator(session, username="operator"):
    return Actor.of(session.scalar(select(User).where(User.username == username)))


def _receive(session, places, text, lon, lat, now, class_code=None, source="hotline_12345"):
    case, _ = receive(
        session,
        Report(source=source, class_code=class_code, description=text, lon=lon, lat=lat),
        actor=_operator(session, "admin" if source == "leader" else "operator"),
        places=places,
        calendar=working_calendar(session),
        now=now,
    )
    return case


def test_the_operators_choice_is_recorded_as_accepted_or_overridden(
    city_session, city_places, trained, clock
):
    lon, lat = point_in(city_places, YINGCUI)
    took = _receive(city_session, city_places, "路灯坏了一片漆黑", lon, lat, clock.now(), "01037")
    other = _receive(
        city_session, city_places, "路灯坏了一片漆黑", lon + 0.01, lat, clock.now(), "01038"
    )
    records = {r.case_id: r for r in city_session.scalars(select(SuggestionRecord))}
    assert records[took.id].accepted is True and records[took.id].top_class == "01037"
    assert records[other.id].accepted is False and records[other.id].chosen_class == "01038"
    first = city_session.scalar(select(CaseEvent).where(CaseEvent.case_id == took.id))
    assert first.payload["suggestion"]["model"] == trained.version
    figures = service.live_accuracy(city_session, now=clock.now(), days=7)
    assert figures["settled"] == 2 and figures["accuracy"] == 0.5
    assert figures["per_class"]["01038"] == {"n": 1, "accuracy": 0.0}


def test_a_report_alike_in_meaning_at_the_same_corner_is_offered_as_a_duplicate(
    city_session, city_places, trained, clock
):
    lon, lat = point_in(city_places, YINGCUI)
    first = _receive(city_session, city_places, "垃圾桶满了没人清", lon, lat, clock.now(), "06042")
    # Filed under a neighbouring class: the 50 m same-class search alone would miss it.
    second = _receive(city_session, city_places, "果皮箱溢出", lon, lat, clock.now(), "06010")
    event = city_session.scalar(select(CaseEvent).where(CaseEvent.case_id == second.id))
    candidates = event.payload.get("duplicate_candidates")
    assert candidates and candidates[0]["ticket"] == first.ticket
    assert candidates[0]["score"] >= SEMANTIC_DUPLICATE_SCORE
    assert second.state != "merged"  # the operator decides
    unrelated = _receive(city_session, city_places, "路灯不亮", lon, lat, clock.now(), "01037")
    event = city_session.scalar(select(CaseEvent).where(CaseEvent.case_id == unrelated.id))
    assert "duplicate_candidates" not in event.payload


def _jpeg(size, seed=3) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (64, 64))
    image.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(4096)]
    )
    image = image.resize(size)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_a_photo_reused_on_another_case_is_flagged(city_session, city_places, clock, tmp_path):
    now = clock.now()
    original = store_photo(city_session, _jpeg((400, 300)), "a.jpg", directory=tmp_path, now=now)
    # The same picture resized and re-encoded: other bytes, the same perceptual hash.
    copy = store_photo(city_session, _jpeg((320, 240)), "b.jpg", directory=tmp_path, now=now)
    fresh = store_photo(
        city_session, _jpeg((400, 300), seed=9), "c.jpg", directory=tmp_path, now=now
    )
    assert original.sha256 != copy.sha256
    lon, lat = point_in(city_places, YINGCUI)
    operator = _operator(city_session)
    calendar = working_calendar(city_session)
    cases = []
    for photo, shift in ((original, 0), (copy, 0.01), (fresh, 0.02)):
        case, _ = receive(
            city_session,
            Report(
                source="hotline_12345",
                class_code="06010",
                description="路边有垃圾",
                lon=lon + shift,
                lat=lat,
                photos=[photo.id],
            ),
            actor=operator,
            places=city_places,
            calendar=calendar,
            now=now,
        )
        cases.append(case)
    result = integrity.scan(city_session, media_dir=tmp_path, now=now)
    assert result.photos == 3
    flags = city_session.scalars(select(IntegrityFlag)).all()
    assert [(f.case_id, f.kind) for f in flags] == [(cases[1].id, "reused_photo")]
    assert flags[0].detail["other_case"] == cases[0].ticket
    assert flags[0].user_id == operator.user_id
    counts = integrity.flag_counts(
        city_session, since=now - timedelta(days=1), until=now + timedelta(days=1)
    )
    assert counts["users"] == {operator.user_id: 1}
    again = integrity.scan(city_session, media_dir=tmp_path, now=now)
    assert again.flags == 0  # the cursor moved on: nothing is flagged twice


def test_the_recheck_draw_takes_its_share_and_a_different_inspector(
    city_session, city_places, clock
):
    now = clock.now()
    lon, lat = point_in(city_places, YINGCUI)
    for _ in range(300):
        case = _receive(
            city_session,
            city_places,
            "路灯不亮",
            lon,
            lat,
            now,
            "01037",
            source="leader",
        )
        case.closed_at = now - timedelta(hours=1)  # as the loop's close would leave it
    city_session.flush()
    drawn = integrity.draw_rechecks(
        city_session,
        since=now - timedelta(days=1),
        until=now,
        share=0.2,
        rng=random.Random(5),
        now=now,
    )
    assert 40 <= len(drawn) <= 80  # 60 expected; binomial sd ≈ 6.9
    inspectors = {u.id for u in city_session.scalars(select(User).where(User.role == "inspector"))}
    assert all(r.inspector_id in inspectors for r in drawn)
    again = integrity.draw_rechecks(
        city_session, since=now - timedelta(days=1), until=now, share=1.0, now=now
    )
    assert len(again) == 300 - len(drawn)  # a case is drawn once
    done = integrity.record_recheck(
        city_session, drawn[0].id, outcome="failed", note="未处置", now=now
    )
    assert done.outcome == "failed"


def test_a_planted_surge_raises_an_early_warning(city_session, city_places, clock):
    now = clock.now()
    lon, lat = point_in(city_places, YINGCUI)
    rng = random.Random(1)
    for day in range(1, 90):
        if day % 3 == 0:  # a quiet street: one report every third day
            _receive(
                city_session,
                city_places,
                "夜间噪声扰民",
                lon + rng.uniform(0, 0.002),
                lat,
                now - timedelta(days=day),
                "06028",
                source="leader",
            )
    assert warning.detect(city_session, now=now) == []
    for _ in range(8):
        _receive(
            city_session,
            city_places,
            "夜间噪声扰民",
            lon + rng.uniform(0, 0.002),
            lat,
            now - timedelta(minutes=rng.randint(1, 300)),
            "06028",
            source="leader",
        )
    alerts = warning.detect(city_session, now=now)
    assert [(a.class_code, a.observed) for a in alerts] == [("06028", 8)]
    assert alerts[0].expected < 1 and alerts[0].published
    assert warning.detect(city_session, now=now) == []  # one alert per street, class and day
    street = city_session.scalar(select(Case.street).where(Case.class_code == "06028").limit(1))
    assert alerts[0].street == street


def _photo_taken(client, auth, user, when: str, seed: int) -> str:
    """A real JPEG whose camera says it was taken at `when` (EXIF DateTime, local time)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (64, 64))
    image.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(4096)]
    )
    exif = Image.Exif()
    exif[0x0132] = when
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    response = client.post(
        "/api/v1/media",
        files={"file": ("p.jpg", buffer.getvalue(), "image/jpeg")},
        headers=auth(user),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_check_staged_with_an_old_photo_away_from_the_spot_is_flagged(
    client, auth, clock, city_session, city_places
):
    from cityloop.intake.service import record_positions
    from tests.cases.helpers import Desk, department_id
    from tests.conftest import TEST_SETTINGS, TZ

    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    case_id = desk.report(
        "inspector",
        source="inspector",
        class_code="21004",
        lon=lon,
        lat=lat,
        description="污水横溢",
    )["id"]
    desk.act("operator", case_id, "file")
    desk.act(
        "dispatcher", case_id, "dispatch", department_id=department_id(city_session, "D-350203")
    )
    clock.set(datetime(2026, 8, 28, 11, 0, tzinfo=TZ))
    desk.uploaded["after.jpg"] = _photo_taken(client, auth, "handler", "2026:08:28 10:50:00", 1)
    desk.act(
        "handler",
        case_id,
        "submit_result",
        result="已疏通",
        method="management",
        photos=["after.jpg"],
    )
    desk.act("dispatcher", case_id, "approve_result")
    clock.set(datetime(2026, 8, 28, 11, 40, tzinfo=TZ))
    # The check's photo was taken at 09:00, before the result it checks (11:00); the
    # inspector's phone was 5 km away at the time of the check.
    desk.uploaded["check.jpg"] = _photo_taken(client, auth, "inspector", "2026:08:28 09:00:00", 2)
    inspector = city_session.scalar(select(User).where(User.username == "inspector"))
    record_positions(
        city_session,
        inspector.id,
        [
            {"lon": lon + 0.05, "lat": lat, "at": datetime(2026, 8, 28, 11, 35, tzinfo=TZ)},
        ],
    )
    desk.act("inspector", case_id, "report_check", passed=True, photos=["check.jpg"])
    integrity.scan(city_session, media_dir=TEST_SETTINGS.media_dir, now=clock.now())
    kinds = {
        (f.kind, f.user_id)
        for f in city_session.scalars(select(IntegrityFlag).where(IntegrityFlag.case_id == case_id))
    }
    assert kinds == {("photo_before_result", inspector.id), ("check_off_track", inspector.id)}


def test_a_citizens_report_is_prefiled_only_where_the_city_switched_it_on(
    client, auth, city_session, city_places, trained, clock
):
    from cityloop.cases.service import PUBLIC

    lon, lat = point_in(city_places, YINGCUI)

    def citizen(text, shift):
        case, _ = receive(
            city_session,
            Report(source="wechat", class_code=None, description=text, lon=lon + shift, lat=lat),
            actor=PUBLIC,
            places=city_places,
            calendar=working_calendar(city_session),
            now=clock.now(),
        )
        return case

    shown_only = citizen("垃圾桶满了没人清", 0)
    assert shown_only.state == "reported" and shown_only.class_code == "06042"
    assert shown_only.class_confirmed is False  # the model's guess, confirmed at filing
    refused = client.put(
        "/api/v1/suggestions/prefile/wechat", json={"enabled": True}, headers=auth("operator")
    )
    assert refused.status_code == 403
    bad = client.put(
        "/api/v1/suggestions/prefile/inspector", json={"enabled": True}, headers=auth("admin")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "source"
    switched = client.put(
        "/api/v1/suggestions/prefile/wechat",
        json={"enabled": True, "threshold": 0.6},
        headers=auth("admin"),
    )
    assert switched.status_code == 200, switched.text
    prefiled = citizen("路灯坏了一片漆黑", 0.01)
    assert prefiled.state == "pending_filing" and prefiled.class_code == "01037"
    event = city_session.scalar(select(CaseEvent).where(CaseEvent.case_id == prefiled.id))
    assert event.payload["prefiled"]["department"]["name"]
    vague = citizen("这里有问题", 0.02)  # no class is probable enough: only shown
    assert vague.state == "reported"


def test_the_drawn_inspector_records_the_recheck_outcome_once(
    client, auth, city_session, city_places, clock
):
    now = clock.now()
    lon, lat = point_in(city_places, YINGCUI)
    case = _receive(city_session, city_places, "路灯不亮", lon, lat, now, "01037", source="leader")
    case.closed_at = now - timedelta(hours=2)  # as the loop's close would leave it
    city_session.flush()
    (drawn,) = integrity.draw_rechecks(
        city_session, since=now - timedelta(days=1), until=now, share=1.0, now=now
    )
    names = {u.id: u.username for u in city_session.scalars(select(User))}
    mine, other = (
        names[drawn.inspector_id],
        {"inspector", "inspector_huli"} - {names[drawn.inspector_id]},
    )
    listed = client.get("/api/v1/rechecks", headers=auth(mine))
    assert [r["case_id"] for r in listed.json()] == [case.id]
    assert client.get("/api/v1/rechecks", headers=auth(other.pop())).json() == []
    url = f"/api/v1/rechecks/{drawn.id}"
    assert (
        client.post(url, json={"outcome": "confirmed"}, headers=auth("handler")).status_code == 403
    )
    bad = client.post(url, json={"outcome": "maybe"}, headers=auth(mine))
    assert bad.status_code == 422 and bad.json()["field"] == "outcome"
    done = client.post(url, json={"outcome": "failed", "note": "仍有问题"}, headers=auth(mine))
    assert done.status_code == 200 and done.json()["outcome"] == "failed"
    again = client.post(url, json={"outcome": "confirmed"}, headers=auth(mine))
    assert again.status_code == 409


def test_the_expected_count_follows_the_season_of_last_year():
    """Seed 004's 城管"天气预报": a street whose rain-season weeks had four times the reports a
    year ago expects more in those weeks this year, and not in the others."""
    from datetime import date

    today = date(2026, 6, 15)
    first = today - timedelta(days=warning.SEASON_DAYS)
    history = {}
    for offset in range(1, warning.SEASON_DAYS):
        day = today - timedelta(days=offset)
        rainy = abs((day - date(2025, 6, 15)).days) <= 20
        history[day] = 4 if rainy else 1
    june = warning.expected(history, today, first)
    autumn = warning.expected(history, date(2026, 6, 15), first, today)
    assert june == autumn  # the same day asked both ways
    assert warning.season(history, today, first) > 2.5
    assert warning.season(history, date(2026, 9, 15), first) < 1.0
    assert june > 2.5 * sum(history[today - timedelta(days=d)] for d in range(1, 29)) / 28 * 0.9
    assert warning.season({}, today, today - timedelta(days=30)) == 1.0
