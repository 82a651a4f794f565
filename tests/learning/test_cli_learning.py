"""`cityloop import-history` and `cityloop learn` as the contract says (issue 18), and the
worker's learning pass, on a committed demo city (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.cli import _learning_pass, app
from cityloop.db import make_engine
from cityloop.learning import synthetic
from cityloop.learning.models import HistoryRecord, LearnedModel
from tests.learning.test_learning import _csv


def _count(url, model):
    engine = make_engine(url)
    with Session(engine) as session:
        n = session.scalar(select(func.count()).select_from(model))
    engine.dispose()
    return n


def test_import_history_then_learn(city_db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(city_db.data_dir))
    runner = CliRunner()
    history = synthetic.history(600, start=datetime(2025, 1, 1, tzinfo=UTC))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv(history[:10], extra_rows=[["", "06042", "", "", ""]]))
    refused = runner.invoke(app, ["import-history", str(bad), "--db", city_db.url])
    assert refused.exit_code == 1, refused.output
    assert "line 12" in refused.output and "nothing imported" in refused.output
    assert _count(city_db.url, HistoryRecord) == 0
    few = tmp_path / "few.csv"
    few.write_bytes(_csv(history[:30], encoding="gb18030"))
    assert runner.invoke(app, ["import-history", str(few), "--db", city_db.url]).exit_code == 0
    too_little = runner.invoke(app, ["learn", "--db", city_db.url])
    assert too_little.exit_code == 1 and "too little" in too_little.output
    assert _count(city_db.url, LearnedModel) == 0
    good = tmp_path / "history.csv"
    good.write_bytes(_csv(history[30:]))
    imported = runner.invoke(app, ["import-history", str(good), "--db", city_db.url])
    assert imported.exit_code == 0, imported.output
    assert "570 rows imported" in imported.output
    learned = runner.invoke(app, ["learn", "--db", city_db.url])
    assert learned.exit_code == 0, learned.output
    assert "class: accuracy" in learned.output and "department: accuracy" in learned.output
    assert "06042: F1" in learned.output and "厦门市环境卫生中心: F1" in learned.output
    assert _count(city_db.url, LearnedModel) == 1
    # The worker's learning pass (the rest of `worker --once` is tested in tests/test_cli.py):
    # the model is a day old, so no retrain.
    _learning_pass(city_db.url, datetime.now(UTC))
    out = capsys.readouterr().out
    assert "integrity: 0 photos, 0 flags" in out and "model: current" in out
    assert _count(city_db.url, LearnedModel) == 1
