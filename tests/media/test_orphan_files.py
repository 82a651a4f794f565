"""Issue 23 item 3 (R-IN-2 evidence, RELIABILITY.md "nothing is half-written"): a refused
request leaves nothing on disk either — the photos it had already checked and written are
removed when its transaction rolls back — and `cityloop sweep-media` removes files no media
row names (left by a process killed between writing and committing), never a file a row
names nor one that may belong to a request still running."""

from __future__ import annotations

import os
import time

from sqlalchemy import select
from typer.testing import CliRunner

from cityloop.cli import app as cli
from cityloop.media.models import Media
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TEST_SETTINGS, jpeg_bytes

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _files() -> set[str]:
    directory = TEST_SETTINGS.media_dir
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


def test_a_refused_report_leaves_no_file(client, auth, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    form = {"class_code": "06010", "description": "暴露垃圾", "lon": str(lon), "lat": str(lat)}
    before = _files()
    refused = client.post(
        "/api/v1/inspector/reports",
        data=form,
        files=[
            ("photos", ("good.jpg", jpeg_bytes("green"), "image/jpeg")),
            ("photos", ("evil.svg", SVG, "image/svg+xml")),
        ],
        headers=auth("inspector"),
    )
    assert refused.status_code == 422, refused.text
    assert _files() == before
    # Refused further on (a point outside the city), after both photos were written.
    outside = client.post(
        "/api/v1/inspector/reports",
        data={**form, "lon": "100.0", "lat": "30.0"},
        files=[("photos", ("a.jpg", jpeg_bytes("red"), "image/jpeg"))],
        headers=auth("inspector"),
    )
    assert outside.status_code == 422, outside.text
    assert _files() == before
    # An accepted one keeps its file.
    kept = client.post(
        "/api/v1/inspector/reports",
        data=form,
        files=[("photos", ("a.jpg", jpeg_bytes("blue"), "image/jpeg"))],
        headers=auth("inspector"),
    )
    assert kept.status_code == 201
    assert len(_files() - before) == 1


def test_the_sweep_removes_files_no_row_names(city_db, tmp_path):
    from sqlalchemy.orm import Session

    from cityloop.db import make_engine
    from cityloop.media.service import store_photo

    media = city_db.data_dir / "media"
    engine = make_engine(city_db.url)
    with Session(engine) as session:
        from datetime import UTC, datetime

        row = store_photo(
            session, jpeg_bytes("gray"), "kept.jpg", directory=media, now=datetime.now(UTC)
        )
        session.commit()
        kept = row.stored_name
    orphan, fresh = media / "m0rphan00000000000000000.jpg", media / "m0fresh000000000000000000.jpg"
    orphan.write_bytes(b"left by a killed process")
    fresh.write_bytes(b"a request may still be committing it")
    old = time.time() - 2 * 3600
    os.utime(orphan, (old, old))
    os.utime(media / kept, (old, old))

    env = {"CITYLOOP_DATA_DIR": str(city_db.data_dir)}
    result = CliRunner().invoke(cli, ["sweep-media", "--db", city_db.url], env=env)
    assert result.exit_code == 0, result.output
    assert "removed 1" in result.output
    assert not orphan.exists()
    assert (media / kept).exists() and fresh.exists()
    with Session(engine) as session:
        assert session.scalar(select(Media).where(Media.stored_name == kept)) is not None
    engine.dispose()
